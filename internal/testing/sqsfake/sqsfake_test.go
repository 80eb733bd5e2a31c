package sqsfake

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// newClient returns a real SDK client for srv, configured the way a deployed process is:
// region, credentials and the endpoint come from the environment.
func newClient(t *testing.T, srv *Server) *sqs.Client {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_SQS", srv.URL())
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sqs.NewFromConfig(cfg)
}

func newServer(t *testing.T) *Server {
	srv := New()
	t.Cleanup(srv.Close)
	return srv
}

func receive(t *testing.T, c *sqs.Client, url string, wait, vis int32) []types.Message {
	t.Helper()
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(url),
		MaxNumberOfMessages:         10,
		WaitTimeSeconds:             wait,
		VisibilityTimeout:           vis, // 0 is not sent: the queue's default applies
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return out.Messages
}

func send(t *testing.T, c *sqs.Client, url, body string) string {
	t.Helper()
	out, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return aws.ToString(out.MessageId)
}

func receiveCount(t *testing.T, m types.Message) int {
	t.Helper()
	n, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if err != nil {
		t.Fatalf("ApproximateReceiveCount: %v (attributes %v)", err, m.Attributes)
	}
	return n
}

func TestSendReceiveDelete(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv)
	url, err := srv.CreateQueue("q", QueueOptions{VisibilityTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	id := send(t, c, url, "hello")

	msgs := receive(t, c, url, 0, 0)
	if len(msgs) != 1 || aws.ToString(msgs[0].Body) != "hello" || aws.ToString(msgs[0].MessageId) != id {
		t.Fatalf("received %+v, want the message sent", msgs)
	}
	if n := receiveCount(t, msgs[0]); n != 1 {
		t.Errorf("ApproximateReceiveCount = %d, want 1", n)
	}
	// In flight: invisible to a second receive.
	if again := receive(t, c, url, 0, 0); len(again) != 0 {
		t.Fatalf("an in-flight message was received again: %+v", again)
	}
	if st := srv.Stats(url); st != (Stats{InFlight: 1}) {
		t.Errorf("stats = %+v, want one in flight", st)
	}
	if _, err := c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(url); st != (Stats{}) {
		t.Errorf("stats after delete = %+v, want an empty queue", st)
	}
	if d := srv.Deleted(url); len(d) != 1 || d[0].ID != id || d[0].Receives != 1 {
		t.Errorf("deleted = %+v", d)
	}
}

func TestLongPollWakesOnSend(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv)
	url, _ := srv.CreateQueue("q", QueueOptions{})
	got := make(chan []types.Message, 1)
	go func() {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
		if err != nil {
			t.Error(err)
		}
		got <- out.Messages
	}()
	// The poll is parked once the server has counted it.
	for srv.Calls("ReceiveMessage") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	send(t, c, url, "late")
	select {
	case msgs := <-got:
		if len(msgs) != 1 || aws.ToString(msgs[0].Body) != "late" {
			t.Fatalf("long poll returned %+v", msgs)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("long poll returned %s after the send", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long poll did not return after a send")
	}
}

func TestLongPollTimesOutEmpty(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv)
	url, _ := srv.CreateQueue("q", QueueOptions{})
	start := time.Now()
	if msgs := receive(t, c, url, 1, 0); len(msgs) != 0 {
		t.Fatalf("received %+v from an empty queue", msgs)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("a 1s long poll returned after %s", d)
	}
}

func TestVisibilityTimeoutAndReceiveCount(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv)
	url, _ := srv.CreateQueue("q", QueueOptions{VisibilityTimeout: time.Hour})
	send(t, c, url, "m")
	first := receive(t, c, url, 0, 1)
	if len(first) != 1 {
		t.Fatal("no message")
	}
	// The per-receive timeout of 1s overrides the queue's hour; a long poll picks it up again.
	second := receive(t, c, url, 5, 60)
	if len(second) != 1 || receiveCount(t, second[0]) != 2 {
		t.Fatalf("second receive = %+v, want the message with receive count 2", second)
	}
	if aws.ToString(first[0].ReceiptHandle) == aws.ToString(second[0].ReceiptHandle) {
		t.Error("receipt handle did not change between receives")
	}
	// The outdated handle no longer deletes the message.
	if _, err := c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: first[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(url); st.InFlight != 1 {
		t.Errorf("stats = %+v: an outdated receipt handle deleted the message", st)
	}
}

func TestChangeMessageVisibility(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv)
	ctx := context.Background()
	url, _ := srv.CreateQueue("q", QueueOptions{VisibilityTimeout: time.Hour})
	send(t, c, url, "m")
	msgs := receive(t, c, url, 0, 0)
	// Releasing the message makes it receivable at once.
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 0,
	}); err != nil {
		t.Fatal(err)
	}
	again := receive(t, c, url, 0, 1)
	if len(again) != 1 {
		t.Fatal("a released message was not received again")
	}
	// An outdated handle, or a message whose timeout ran out, cannot be changed.
	_, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 30,
	})
	var notInflight *types.MessageNotInflight
	if !errors.As(err, &notInflight) {
		t.Fatalf("change with an outdated handle: err = %v, want MessageNotInflight", err)
	}
	// Extending keeps it hidden past its original 1s timeout.
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: again[0].ReceiptHandle, VisibilityTimeout: 60,
	}); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, c, url, 2, 0); len(got) != 0 {
		t.Fatalf("an extended message came back: %+v", got)
	}
	_, err = c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: aws.String("nonsense"), VisibilityTimeout: 30,
	})
	var invalid *types.ReceiptHandleIsInvalid
	if !errors.As(err, &invalid) {
		t.Fatalf("change with an unknown handle: err = %v, want ReceiptHandleIsInvalid", err)
	}
}

func TestRedriveToDeadLetterQueue(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv)
	dlq, _ := srv.CreateQueue("q-dlq", QueueOptions{})
	url, err := srv.CreateQueue("q", QueueOptions{VisibilityTimeout: time.Hour, DeadLetterQueue: "q-dlq", MaxReceiveCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	id := send(t, c, url, "poison")
	for want := 1; want <= 2; want++ {
		msgs := receive(t, c, url, 0, 0)
		if len(msgs) != 1 || receiveCount(t, msgs[0]) != want {
			t.Fatalf("receive %d = %+v", want, msgs)
		}
		// Released at once, as a consumer that failed would.
		if _, err := c.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(url), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 0,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if msgs := receive(t, c, url, 0, 0); len(msgs) != 0 {
		t.Fatalf("received %+v after maxReceiveCount receives; want it redriven", msgs)
	}
	got := srv.Messages(dlq)
	if len(got) != 1 || got[0].ID != id || got[0].Body != "poison" || got[0].Receives != 2 {
		t.Fatalf("dead-letter queue holds %+v, want the message received twice", got)
	}
	msgs := receive(t, c, dlq, 0, 0)
	if len(msgs) != 1 || aws.ToString(msgs[0].MessageId) != id {
		t.Fatalf("receive from the dead-letter queue = %+v", msgs)
	}
}

func TestQueueOperations(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv)
	ctx := context.Background()
	if _, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("d")}); err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q"), Attributes: map[string]string{
		"VisibilityTimeout": "45",
		"RedrivePolicy":     `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:d","maxReceiveCount":"3"}`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("q")})
	if err != nil || aws.ToString(got.QueueUrl) != aws.ToString(created.QueueUrl) {
		t.Fatalf("GetQueueUrl = %v, %v; want %s", aws.ToString(got.QueueUrl), err, aws.ToString(created.QueueUrl))
	}
	send(t, c, aws.ToString(created.QueueUrl), "a")
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: created.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"ApproximateNumberOfMessages": "1", "VisibilityTimeout": "45",
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:d","maxReceiveCount":3}`} {
		if attrs.Attributes[k] != want {
			t.Errorf("attribute %s = %q, want %q", k, attrs.Attributes[k], want)
		}
	}
	_, err = c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("missing")})
	var missing *types.QueueDoesNotExist
	if !errors.As(err, &missing) {
		t.Fatalf("GetQueueUrl of a missing queue: err = %v, want QueueDoesNotExist", err)
	}
	_, err = c.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: created.QueueUrl})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AWS.SimpleQueueService.UnsupportedOperation" {
		t.Fatalf("unsupported operation: err = %v", err)
	}
}

// SendMessageBatch sends every sound entry, reports the others one by one, and refuses the
// requests SQS refuses as a whole, with the errors the SDK knows.
func TestSendMessageBatch(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv)
	url, err := srv.CreateQueue("parts", QueueOptions{VisibilityTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	entries := func(n int, body func(i int) string) []types.SendMessageBatchRequestEntry {
		out := make([]types.SendMessageBatchRequestEntry, n)
		for i := range out {
			out[i] = types.SendMessageBatchRequestEntry{Id: aws.String("part-" + strconv.Itoa(i)), MessageBody: aws.String(body(i))}
		}
		return out
	}
	in := entries(10, func(i int) string { return "part " + strconv.Itoa(i+1) })
	in[3].DelaySeconds = 901
	out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: in})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Successful) != 9 || len(out.Failed) != 1 || aws.ToString(out.Failed[0].Id) != "part-3" || !out.Failed[0].SenderFault {
		t.Fatalf("successful %d, failed %+v; want 9 sent and part-3 failed by the sender", len(out.Successful), out.Failed)
	}
	bodies := map[string]bool{}
	for _, m := range receive(t, c, url, 0, 0) {
		bodies[aws.ToString(m.Body)] = true
	}
	for len(bodies) < 9 {
		ms := receive(t, c, url, 1, 0)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			bodies[aws.ToString(m.Body)] = true
		}
	}
	if len(bodies) != 9 || bodies["part 4"] {
		t.Errorf("received %v; want every part but the fourth", bodies)
	}

	dup := entries(2, func(int) string { return "x" })
	dup[1].Id = dup[0].Id
	badID := entries(1, func(int) string { return "x" })
	badID[0].Id = aws.String("no spaces")
	for name, tc := range map[string]struct {
		entries []types.SendMessageBatchRequestEntry
		want    error
	}{
		"eleven entries": {entries(11, func(int) string { return "x" }), &types.TooManyEntriesInBatchRequest{}},
		"an id twice":    {dup, &types.BatchEntryIdsNotDistinct{}},
		"a malformed id": {badID, &types.InvalidBatchEntryId{}},
		"over 256 KiB":   {entries(2, func(int) string { return strings.Repeat("x", 130<<10) }), &types.BatchRequestTooLong{}},
	} {
		_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: tc.entries})
		// A pointer to a variable of the wanted error's type, as errors.As takes it.
		if !errors.As(err, reflect.New(reflect.TypeOf(tc.want)).Interface()) {
			t.Errorf("%s: %v, want %T", name, err, tc.want)
		}
	}
	if srv.Stats(url).Visible != 0 {
		t.Errorf("refused requests sent messages: %+v", srv.Stats(url))
	}
	// The SDK refuses an empty batch itself; other clients get SQS's answer.
	if aerr := checkBatch(nil); aerr == nil || aerr.code != "EmptyBatchRequest" {
		t.Errorf("an empty batch: %+v", aerr)
	}
}
