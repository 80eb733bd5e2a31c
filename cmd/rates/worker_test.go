package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"rates/internal/testing/pgserver"
	"rates/internal/testing/sqsfake"
)

// `rates worker` (the binary) against the S3 and SQS stand-ins: a load blocked past
// INGEST_MAX_BATCH_DURATION rolls back, its message comes back and is received again, and once
// the block is gone the batch loads, once.
func TestWorkerBinaryDeadlineRollsBackAndRedelivers(t *testing.T) {
	ctx := context.Background()
	url := pgserver.NewDatabase(t, srv)
	env := map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "warn", "MIGRATE_ON_START": "true"}
	if out, err := ratesCmd(t, env, "seed", "--file", defaultDump); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	db := newDBCheck(t, url)

	s3srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(s3srv.Close)
	fake := sqsfake.New()
	t.Cleanup(fake.Close)
	if _, err := fake.CreateQueue("ingest-dlq", sqsfake.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	queue, err := fake.CreateQueue("ingest", sqsfake.QueueOptions{VisibilityTimeout: 3 * time.Second, DeadLetterQueue: "ingest-dlq", MaxReceiveCount: 5})
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(s3srv.URL), true })
	sqsc := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(fake.URL()) })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("rates-ingest")}); err != nil {
		t.Fatal(err)
	}
	body := []byte("orig_code,dest_code,day,price\nCNSHA,NLRTM,2025-04-01,100\nCNSHA,NLRTM,2025-04-01,200\n")
	put, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rates-ingest"), Key: aws.String("incoming/late.csv"), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	event := fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"%s","eventName":"ObjectCreated:Put",`+
		`"s3":{"bucket":{"name":"rates-ingest"},"object":{"key":"incoming/late.csv","size":%d,"eTag":%q}}}]}`,
		time.Now().UTC().Format(time.RFC3339Nano), len(body), strings.Trim(aws.ToString(put.ETag), `"`))
	if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(event)}); err != nil {
		t.Fatal(err)
	}

	// Something else holds prices: every attempt runs into its lock timeout and its deadline.
	tx, err := db.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE prices IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	worker := startProc(t, map[string]string{
		"DATABASE_URL": url, "LOG_LEVEL": "info", "INGEST_QUEUE_URL": queue, "INGEST_WAIT_TIME": "1",
		"INGEST_VISIBILITY_TIMEOUT": "3s", "INGEST_MAX_BATCH_DURATION": "1s", "INGEST_S3_PATH_STYLE": "true",
		"AWS_ENDPOINT_URL_SQS": fake.URL(), "AWS_ENDPOINT_URL_S3": s3srv.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
	}, "worker")
	deadline := time.Now().Add(60 * time.Second)
	for {
		msgs := fake.Messages(queue)
		if len(msgs) == 1 && msgs[0].Receives >= 2 {
			break // the first attempt rolled back and the message came back
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message was not received again: %+v\n%s", msgs, worker.output)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(worker.output.String(), "of the batch deadline of 1s (INGEST_MAX_BATCH_DURATION), rolled back") {
		t.Errorf("the worker's log does not name the deadline:\n%s", worker.output)
	}
	if n := newDBCheck(t, url).int(`SELECT count(*) FROM batches WHERE source_kind = 's3'`); n != 0 {
		t.Fatalf("%d batches recorded by attempts past their deadline, want none", n)
	}
	_ = tx.Rollback(ctx)

	deadline = time.Now().Add(90 * time.Second)
	for len(fake.Deleted(queue)) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the batch never loaded once the lock was gone\n%s", worker.output)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := db.int(`SELECT count(*) FROM prices WHERE day = '2025-04-01'`); n != 2 {
		t.Fatalf("%d prices of the batch, want 2 (loaded once)", n)
	}
	_ = worker.cmd.Process.Signal(os.Interrupt)
	if err := worker.wait(t, 30*time.Second); err != nil {
		t.Fatalf("worker exit: %v\n%s", err, worker.output)
	}
}
