package worker

import (
	"context"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// NewAWSClients builds the worker's clients from the SDK's default chain: region and
// credentials from the environment, shared config or the ECS task role, and endpoints
// redirected by AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_S3. pathStyle addresses buckets as
// endpoint/bucket, which S3 stand-ins need.
func NewAWSClients(ctx context.Context, pathStyle bool) (*sqs.Client, *s3.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return sqs.NewFromConfig(cfg), s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle }), nil
}
