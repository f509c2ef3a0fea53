package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/smithy-go/logging"
)

// errNoAWSCredentials is returned for --store dynamodb:<table> when the
// standard AWS chain finds no credentials at all.
var errNoAWSCredentials = errors.New("no AWS credentials found (environment, shared config files, container or instance role); " +
	"DynamoDB Local accepts any key, e.g. AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1")

// checkAWSCredentials fails with errNoAWSCredentials when the standard AWS
// chain has nothing but the EC2 instance role left to try and that fails:
// the SDK's own error would recount every source it tried, down to the
// instance metadata service, and its logger would warn about IMDSv1 on the
// way. Other failures (a bad profile, an expired SSO session) are left to
// dynamo.Open, whose errors name them.
func checkAWSCredentials(ctx context.Context) error {
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithLogger(logging.Nop{}))
	if err != nil || awsCfg.Credentials == nil {
		return nil
	}
	if !aws.IsCredentialsProvider(awsCfg.Credentials, (*ec2rolecreds.Provider)(nil)) {
		return nil
	}
	if _, err := awsCfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("AWS credentials: %w", ctx.Err())
		}
		return errNoAWSCredentials
	}
	return nil
}
