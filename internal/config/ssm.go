package config

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// ParameterGetter is the part of the SSM client the service uses.
type ParameterGetter interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// NewSSMClient builds an SSM client from the SDK's default chain: region and credentials from
// the environment, shared config or the ECS task role; AWS_ENDPOINT_URL_SSM redirects it.
func NewSSMClient(ctx context.Context) (*ssm.Client, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return ssm.NewFromConfig(awsCfg), nil
}

// ResolvePassword reads DB.Password from the SSM parameter named in PasswordSSMParameter,
// decrypting a SecureString. It does nothing when no parameter is configured.
func ResolvePassword(ctx context.Context, db *DB, client ParameterGetter) error {
	if db.PasswordSSMParameter == "" {
		return nil
	}
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{
		Name:           aws.String(db.PasswordSSMParameter),
		WithDecryption: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("read database password from SSM parameter %s: %w", db.PasswordSSMParameter, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return fmt.Errorf("read database password from SSM parameter %s: parameter has no value", db.PasswordSSMParameter)
	}
	db.Password = aws.ToString(out.Parameter.Value)
	return nil
}
