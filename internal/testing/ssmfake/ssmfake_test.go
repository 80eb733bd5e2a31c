package ssmfake

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// The real SDK client, pointed at the stand-in through its environment, reads a parameter,
// gets ParameterNotFound for an unknown one, and every call is recorded.
func TestGetParameterThroughTheSDK(t *testing.T) {
	s := New(map[string]string{"/app/db/password": "s3cret"})
	defer s.Close()
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := ssm.NewFromConfig(cfg)
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app/db/password"), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(out.Parameter.Value) != "s3cret" {
		t.Fatalf("GetParameter = %v, %v; want s3cret", out, err)
	}
	_, err = client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app/missing")})
	var notFound *types.ParameterNotFound
	if !errors.As(err, &notFound) {
		t.Fatalf("unknown parameter: %v, want ParameterNotFound", err)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Name != "/app/db/password" || !reqs[0].WithDecryption || reqs[1].WithDecryption {
		t.Fatalf("recorded requests = %+v", reqs)
	}
}
