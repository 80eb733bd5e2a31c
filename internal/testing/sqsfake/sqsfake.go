// Package sqsfake is an in-memory stand-in for Amazon SQS that speaks the JSON protocol the
// current SDK uses (AWS JSON 1.0, X-Amz-Target: AmazonSQS.<Operation>), so tests can drive
// code through the real SDK client. It models what a consumer relies on: long polling,
// visibility timeouts, receipt handles that change on every receive, receive counts, and
// redrive to a dead-letter queue after maxReceiveCount receives; and what a producer fanning
// work out relies on: SendMessageBatch with its per-entry results and its limits. It covers
// standard queues only, and checks that requests are signed but not the signatures.
package sqsfake

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Account is the account id in queue URLs and ARNs.
const Account = "000000000000"

// Region is the region in queue ARNs.
const Region = "us-east-1"

// maxWait is the longest long poll SQS allows.
const maxWait = 20 * time.Second

// QueueOptions configure a queue.
type QueueOptions struct {
	// VisibilityTimeout is the queue's default; 0 means 30s, as in SQS.
	VisibilityTimeout time.Duration
	// DeadLetterQueue names the queue that receives messages received MaxReceiveCount times
	// without being deleted; empty means no redrive.
	DeadLetterQueue string
	MaxReceiveCount int
}

// Server is a running stand-in. The zero value is not usable; call New.
type Server struct {
	http *httptest.Server

	mu      sync.Mutex
	queues  map[string]*queue // by name
	handles map[string]*message
	wake    chan struct{} // closed and replaced whenever a message may have become receivable
	calls   map[string]int
}

type queue struct {
	name, url, arn string
	opts           QueueOptions
	dlq            *queue
	msgs           []*message // in send order
	deleted        []Message
}

type message struct {
	id           string
	body         string
	md5          string
	sent         time.Time
	firstReceive time.Time
	receives     int
	visibleAt    time.Time
	handle       string // the latest receipt handle; older ones no longer act on the message
	queue        *queue
}

// New starts a stand-in on a local port.
func New() *Server {
	s := &Server{
		queues:  map[string]*queue{},
		handles: map[string]*message{},
		wake:    make(chan struct{}),
		calls:   map[string]int{},
	}
	s.http = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint to give the SDK (BaseEndpoint or AWS_ENDPOINT_URL_SQS).
func (s *Server) URL() string { return s.http.URL }

// Close stops the server; long polls in progress end.
func (s *Server) Close() { s.http.CloseClientConnections(); s.http.Close() }

// CreateQueue creates a queue (or returns the existing one of that name) and returns its URL.
// A dead-letter queue must be created first.
func (s *Server) CreateQueue(name string, opts QueueOptions) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createQueue(name, opts)
}

func (s *Server) createQueue(name string, opts QueueOptions) (string, error) {
	if q, ok := s.queues[name]; ok {
		return q.url, nil
	}
	if name == "" || len(name) > 80 || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return "", fmt.Errorf("invalid queue name %q", name)
	}
	if opts.VisibilityTimeout == 0 {
		opts.VisibilityTimeout = 30 * time.Second
	}
	q := &queue{
		name: name,
		url:  s.http.URL + "/" + Account + "/" + name,
		arn:  "arn:aws:sqs:" + Region + ":" + Account + ":" + name,
		opts: opts,
	}
	if opts.DeadLetterQueue != "" {
		dlq, ok := s.queues[opts.DeadLetterQueue]
		if !ok {
			return "", fmt.Errorf("dead-letter queue %q does not exist", opts.DeadLetterQueue)
		}
		if opts.MaxReceiveCount < 1 {
			return "", fmt.Errorf("maxReceiveCount must be at least 1, got %d", opts.MaxReceiveCount)
		}
		q.dlq = dlq
	}
	s.queues[name] = q
	return q.url, nil
}

// Stats is a snapshot of one queue.
type Stats struct {
	Visible  int // receivable now
	InFlight int // received, not deleted, visibility timeout running
}

// Stats returns the queue's message counts. Messages due for redrive still count as visible.
func (s *Server) Stats(queueURL string) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Stats
	q := s.lookup(queueURL)
	if q == nil {
		return st
	}
	now := time.Now()
	for _, m := range q.msgs {
		if m.visibleAt.After(now) {
			st.InFlight++
		} else {
			st.Visible++
		}
	}
	return st
}

// Message is a snapshot of a message for assertions.
type Message struct {
	ID       string
	Body     string
	Receives int
}

// Messages returns the messages in the queue, in send order.
func (s *Server) Messages(queueURL string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.lookup(queueURL)
	if q == nil {
		return nil
	}
	out := make([]Message, len(q.msgs))
	for i, m := range q.msgs {
		out[i] = Message{ID: m.id, Body: m.body, Receives: m.receives}
	}
	return out
}

// Deleted returns the messages deleted from the queue, in the order they were deleted, with
// the receive count they had.
func (s *Server) Deleted(queueURL string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.lookup(queueURL)
	if q == nil {
		return nil
	}
	return append([]Message(nil), q.deleted...)
}

// Calls returns how many requests of an operation (e.g. "ChangeMessageVisibility") arrived.
func (s *Server) Calls(operation string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[operation]
}

// lookup finds a queue by URL, by the last path segment so that any host spelling works.
func (s *Server) lookup(queueURL string) *queue {
	name := queueURL[strings.LastIndexByte(queueURL, '/')+1:]
	return s.queues[name]
}

// notify wakes long polls; the caller holds mu.
func (s *Server) notify() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// apiError is an SQS error as the JSON protocol carries it. queryCode is the code of the older
// query protocol, which the SDK reports for query-compatible services.
type apiError struct {
	status    int
	code      string
	queryCode string
	message   string
}

func errInvalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterValue", "InvalidParameterValue", fmt.Sprintf(format, args...)}
}

func errNoQueue(url string) *apiError {
	return &apiError{http.StatusBadRequest, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",
		"The specified queue does not exist: " + url}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AmazonSQS.")
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		writeError(w, &apiError{http.StatusBadRequest, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation",
			"only POST / with the JSON protocol is supported"})
		return
	case !ok || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.0"):
		writeError(w, &apiError{http.StatusBadRequest, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation",
			"expected Content-Type application/x-amz-json-1.0 and X-Amz-Target AmazonSQS.<Operation>"})
		return
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		writeError(w, &apiError{http.StatusForbidden, "MissingAuthenticationToken", "MissingAuthenticationToken;Sender",
			"request is not signed"})
		return
	}
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()

	var in map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "MalformedInput", "MalformedInput", "request body is not JSON: " + err.Error()})
		return
	}
	var out any
	var aerr *apiError
	switch op {
	case "SendMessage":
		out, aerr = s.sendMessage(in)
	case "SendMessageBatch":
		out, aerr = s.sendMessageBatch(in)
	case "ReceiveMessage":
		out, aerr = s.receiveMessage(r, in)
	case "DeleteMessage":
		out, aerr = s.deleteMessage(in)
	case "ChangeMessageVisibility":
		out, aerr = s.changeMessageVisibility(in)
	case "GetQueueUrl":
		out, aerr = s.getQueueURL(in)
	case "GetQueueAttributes":
		out, aerr = s.getQueueAttributes(in)
	case "CreateQueue":
		out, aerr = s.createQueueOp(in)
	default:
		aerr = &apiError{http.StatusBadRequest, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation",
			"operation " + op + " is not supported by the stand-in"}
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	body, err := json.Marshal(out)
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalError", "InternalError", err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-RequestId", newID())
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-query-error", e.queryCode+";Sender")
	w.WriteHeader(e.status)
	body, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#" + e.code, "message": e.message})
	_, _ = w.Write(body)
}

// field decodes one input member into v; a missing member leaves v alone.
func field(in map[string]json.RawMessage, name string, v any) *apiError {
	raw, ok := in[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errInvalid("invalid value for %s: %v", name, err)
	}
	return nil
}

func (s *Server) queueOf(in map[string]json.RawMessage) (*queue, *apiError) {
	var url string
	if err := field(in, "QueueUrl", &url); err != nil {
		return nil, err
	}
	if url == "" {
		return nil, &apiError{http.StatusBadRequest, "MissingParameter", "MissingParameter", "QueueUrl is required"}
	}
	q := s.lookup(url)
	if q == nil {
		return nil, errNoQueue(url)
	}
	return q, nil
}

func (s *Server) sendMessage(in map[string]json.RawMessage) (any, *apiError) {
	var body string
	var delay int
	if err := field(in, "MessageBody", &body); err != nil {
		return nil, err
	}
	if err := field(in, "DelaySeconds", &delay); err != nil {
		return nil, err
	}
	if err := checkMessage(body, delay); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, aerr := s.queueOf(in)
	if aerr != nil {
		return nil, aerr
	}
	m := s.enqueue(q, body, delay)
	return map[string]string{"MessageId": m.id, "MD5OfMessageBody": m.md5}, nil
}

// checkMessage applies SQS's rules to one message to send.
func checkMessage(body string, delay int) *apiError {
	if body == "" {
		return &apiError{http.StatusBadRequest, "MissingParameter", "MissingParameter", "MessageBody is required"}
	}
	if delay < 0 || delay > 900 {
		return errInvalid("DelaySeconds must be from 0 to 900, got %d", delay)
	}
	return nil
}

// enqueue adds a message to q; the caller holds s.mu.
func (s *Server) enqueue(q *queue, body string, delay int) *message {
	sum := md5.Sum([]byte(body))
	now := time.Now()
	m := &message{id: newID(), body: body, md5: hex.EncodeToString(sum[:]), sent: now,
		visibleAt: now.Add(time.Duration(delay) * time.Second), queue: q}
	q.msgs = append(q.msgs, m)
	s.notify()
	return m
}

// The limits of SendMessageBatch.
const (
	maxBatchEntries = 10
	maxBatchBytes   = 256 << 10 // the sum of the bodies, as the API reference gives it
)

type batchEntry struct {
	ID           string `json:"Id"`
	MessageBody  string
	DelaySeconds int
}

type batchFailure struct {
	ID          string `json:"Id"`
	SenderFault bool
	Code        string
	Message     string
}

type batchSuccess struct {
	ID               string `json:"Id"`
	MessageID        string `json:"MessageId"`
	MD5OfMessageBody string
}

// sendMessageBatch sends up to 10 messages at once. A request SQS refuses as a whole (no
// entries, more than 10, entry ids repeated or malformed, bodies over 256 KiB together) is an
// error; an entry that breaks a message rule fails alone, listed in Failed, and the others
// are sent.
func (s *Server) sendMessageBatch(in map[string]json.RawMessage) (any, *apiError) {
	var entries []batchEntry
	if err := field(in, "Entries", &entries); err != nil {
		return nil, err
	}
	if aerr := checkBatch(entries); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, aerr := s.queueOf(in)
	if aerr != nil {
		return nil, aerr
	}
	out := struct {
		Successful []batchSuccess
		Failed     []batchFailure
	}{Successful: []batchSuccess{}, Failed: []batchFailure{}}
	for _, e := range entries {
		if aerr := checkMessage(e.MessageBody, e.DelaySeconds); aerr != nil {
			out.Failed = append(out.Failed, batchFailure{ID: e.ID, SenderFault: true, Code: aerr.code, Message: aerr.message})
			continue
		}
		m := s.enqueue(q, e.MessageBody, e.DelaySeconds)
		out.Successful = append(out.Successful, batchSuccess{ID: e.ID, MessageID: m.id, MD5OfMessageBody: m.md5})
	}
	return out, nil
}

// checkBatch applies the rules SQS refuses a whole SendMessageBatch request for.
func checkBatch(entries []batchEntry) *apiError {
	batchErr := func(code, format string, args ...any) *apiError {
		return &apiError{http.StatusBadRequest, code, "AWS.SimpleQueueService." + code, fmt.Sprintf(format, args...)}
	}
	switch {
	case len(entries) == 0:
		return batchErr("EmptyBatchRequest", "there should be at least one SendMessageBatchRequestEntry in the request")
	case len(entries) > maxBatchEntries:
		return batchErr("TooManyEntriesInBatchRequest", "maximum number of entries per request are %d, got %d", maxBatchEntries, len(entries))
	}
	ids := map[string]bool{}
	size := 0
	for _, e := range entries {
		if e.ID == "" || len(e.ID) > 80 || strings.ContainsFunc(e.ID, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) {
			return batchErr("InvalidBatchEntryId", "a batch entry id can only contain alphanumeric characters, hyphens and underscores, 1 to 80 of them: %q", e.ID)
		}
		if ids[e.ID] {
			return batchErr("BatchEntryIdsNotDistinct", "id %s repeated", e.ID)
		}
		ids[e.ID] = true
		size += len(e.MessageBody)
	}
	if size > maxBatchBytes {
		return batchErr("BatchRequestTooLong", "batch requests cannot be longer than %d bytes, got %d", maxBatchBytes, size)
	}
	return nil
}

type receivedMessage struct {
	MessageID     string            `json:"MessageId"`
	ReceiptHandle string            `json:"ReceiptHandle"`
	MD5OfBody     string            `json:"MD5OfBody"`
	Body          string            `json:"Body"`
	Attributes    map[string]string `json:"Attributes,omitempty"`
}

func (s *Server) receiveMessage(r *http.Request, in map[string]json.RawMessage) (any, *apiError) {
	maxMessages, wait, vis := 1, -1, -1
	var names, systemNames []string
	for name, v := range map[string]any{"MaxNumberOfMessages": &maxMessages, "WaitTimeSeconds": &wait, "VisibilityTimeout": &vis,
		"AttributeNames": &names, "MessageSystemAttributeNames": &systemNames} {
		if err := field(in, name, v); err != nil {
			return nil, err
		}
	}
	if maxMessages < 1 || maxMessages > 10 {
		return nil, errInvalid("MaxNumberOfMessages must be from 1 to 10, got %d", maxMessages)
	}
	if wait > 20 {
		return nil, errInvalid("WaitTimeSeconds must be from 0 to 20, got %d", wait)
	}
	if _, set := in["VisibilityTimeout"]; set && (vis < 0 || vis > 43200) {
		return nil, errInvalid("VisibilityTimeout must be from 0 to 43200, got %d", vis)
	}
	if wait < -1 {
		return nil, errInvalid("WaitTimeSeconds must be from 0 to 20, got %d", wait)
	}
	wanted := attributeFilter(append(names, systemNames...))

	s.mu.Lock()
	q, aerr := s.queueOf(in)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	visibility := q.opts.VisibilityTimeout
	if vis >= 0 {
		visibility = time.Duration(vis) * time.Second
	}
	deadline := time.Now().Add(min(time.Duration(max0(wait))*time.Second, maxWait))
	for {
		now := time.Now()
		got := s.take(q, maxMessages, visibility, now)
		if len(got) > 0 || !now.Before(deadline) {
			s.mu.Unlock()
			out := make([]receivedMessage, len(got))
			for i, m := range got {
				out[i] = m
				out[i].Attributes = filterAttributes(m.Attributes, wanted)
			}
			return map[string]any{"Messages": out}, nil
		}
		// Sleep until something is sent or changes, a message's timeout runs out, or the
		// wait ends.
		wakeAt := deadline
		for _, m := range q.msgs {
			if m.visibleAt.After(now) && m.visibleAt.Before(wakeAt) {
				wakeAt = m.visibleAt
			}
		}
		wake := s.wake
		s.mu.Unlock()
		timer := time.NewTimer(wakeAt.Sub(now))
		select {
		case <-wake:
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return map[string]any{"Messages": []receivedMessage{}}, nil
		}
		timer.Stop()
		s.mu.Lock()
	}
}

func max0(n int) int { return max(n, 0) }

// take receives up to limit visible messages from q; the caller holds mu. A message already
// received MaxReceiveCount times moves to the dead-letter queue instead, as SQS does when it
// would otherwise deliver it once more.
func (s *Server) take(q *queue, limit int, visibility time.Duration, now time.Time) []receivedMessage {
	var out []receivedMessage
	kept := q.msgs[:0:0]
	moved := false
	for _, m := range q.msgs {
		switch {
		case len(out) == limit || m.visibleAt.After(now):
			kept = append(kept, m)
		case q.dlq != nil && m.receives >= q.opts.MaxReceiveCount:
			m.queue, m.handle, m.visibleAt = q.dlq, "", now
			q.dlq.msgs = append(q.dlq.msgs, m)
			moved = true
		default:
			m.receives++
			if m.receives == 1 {
				m.firstReceive = now
			}
			m.handle = m.id + "." + newID()
			s.handles[m.handle] = m
			m.visibleAt = now.Add(visibility)
			out = append(out, receivedMessage{
				MessageID: m.id, ReceiptHandle: m.handle, MD5OfBody: m.md5, Body: m.body,
				Attributes: map[string]string{
					"ApproximateReceiveCount":          strconv.Itoa(m.receives),
					"SentTimestamp":                    strconv.FormatInt(m.sent.UnixMilli(), 10),
					"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.firstReceive.UnixMilli(), 10),
					"SenderId":                         Account,
				},
			})
			kept = append(kept, m)
		}
	}
	q.msgs = kept
	if moved {
		s.notify()
	}
	return out
}

// attributeFilter returns nil for "all", or the set of names asked for.
func attributeFilter(names []string) map[string]bool {
	set := map[string]bool{}
	for _, n := range names {
		if n == "All" {
			return nil
		}
		set[n] = true
	}
	return set
}

func filterAttributes(attrs map[string]string, wanted map[string]bool) map[string]string {
	if wanted == nil {
		return attrs
	}
	out := map[string]string{}
	for k, v := range attrs {
		if wanted[k] {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// message resolves a receipt handle; the caller holds mu. current reports whether it is the
// latest handle of a message still in the queue.
func (s *Server) message(q *queue, handle string) (m *message, current bool, aerr *apiError) {
	if handle == "" {
		return nil, false, &apiError{http.StatusBadRequest, "MissingParameter", "MissingParameter", "ReceiptHandle is required"}
	}
	m, ok := s.handles[handle]
	if !ok {
		return nil, false, &apiError{http.StatusBadRequest, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid",
			"The input receipt handle is invalid."}
	}
	return m, m.queue == q && m.handle == handle, nil
}

func (s *Server) deleteMessage(in map[string]json.RawMessage) (any, *apiError) {
	var handle string
	if err := field(in, "ReceiptHandle", &handle); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, aerr := s.queueOf(in)
	if aerr != nil {
		return nil, aerr
	}
	m, current, aerr := s.message(q, handle)
	if aerr != nil {
		return nil, aerr
	}
	// An outdated handle succeeds without deleting, as SQS documents it may.
	if current {
		for i, qm := range q.msgs {
			if qm == m {
				q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
				break
			}
		}
		m.queue = nil
		q.deleted = append(q.deleted, Message{ID: m.id, Body: m.body, Receives: m.receives})
	}
	return struct{}{}, nil
}

func (s *Server) changeMessageVisibility(in map[string]json.RawMessage) (any, *apiError) {
	var handle string
	vis := -1
	if err := field(in, "ReceiptHandle", &handle); err != nil {
		return nil, err
	}
	if err := field(in, "VisibilityTimeout", &vis); err != nil {
		return nil, err
	}
	if vis < 0 || vis > 43200 {
		return nil, errInvalid("VisibilityTimeout must be from 0 to 43200, got %d", vis)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, aerr := s.queueOf(in)
	if aerr != nil {
		return nil, aerr
	}
	m, current, aerr := s.message(q, handle)
	if aerr != nil {
		return nil, aerr
	}
	now := time.Now()
	if !current || !m.visibleAt.After(now) {
		return nil, &apiError{http.StatusBadRequest, "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight",
			"Value " + handle + " for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change."}
	}
	m.visibleAt = now.Add(time.Duration(vis) * time.Second)
	s.notify()
	return struct{}{}, nil
}

func (s *Server) getQueueURL(in map[string]json.RawMessage) (any, *apiError) {
	var name string
	if err := field(in, "QueueName", &name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[name]
	if !ok {
		return nil, errNoQueue(name)
	}
	return map[string]string{"QueueUrl": q.url}, nil
}

func (s *Server) getQueueAttributes(in map[string]json.RawMessage) (any, *apiError) {
	var names []string
	if err := field(in, "AttributeNames", &names); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, aerr := s.queueOf(in)
	if aerr != nil {
		return nil, aerr
	}
	now := time.Now()
	var visible, inFlight int
	for _, m := range q.msgs {
		if m.visibleAt.After(now) {
			inFlight++
		} else {
			visible++
		}
	}
	attrs := map[string]string{
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inFlight),
		"VisibilityTimeout":                     strconv.Itoa(int(q.opts.VisibilityTimeout / time.Second)),
		"QueueArn":                              q.arn,
	}
	if q.dlq != nil {
		policy, _ := json.Marshal(map[string]any{"deadLetterTargetArn": q.dlq.arn, "maxReceiveCount": q.opts.MaxReceiveCount})
		attrs["RedrivePolicy"] = string(policy)
	}
	return map[string]any{"Attributes": filterAttributes(attrs, attributeFilter(names))}, nil
}

func (s *Server) createQueueOp(in map[string]json.RawMessage) (any, *apiError) {
	var name string
	var attrs map[string]string
	if err := field(in, "QueueName", &name); err != nil {
		return nil, err
	}
	if err := field(in, "Attributes", &attrs); err != nil {
		return nil, err
	}
	var opts QueueOptions
	if v, ok := attrs["VisibilityTimeout"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 43200 {
			return nil, errInvalid("VisibilityTimeout must be from 0 to 43200, got %q", v)
		}
		opts.VisibilityTimeout = time.Duration(n) * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := attrs["RedrivePolicy"]; ok {
		var policy struct {
			DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
			MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(v), &policy); err != nil {
			return nil, errInvalid("RedrivePolicy is not JSON: %v", err)
		}
		n, err := strconv.Atoi(strings.Trim(string(policy.MaxReceiveCount), `"`))
		if err != nil {
			return nil, errInvalid("RedrivePolicy maxReceiveCount is not a number")
		}
		opts.DeadLetterQueue = policy.DeadLetterTargetArn[strings.LastIndexByte(policy.DeadLetterTargetArn, ':')+1:]
		opts.MaxReceiveCount = n
	}
	url, err := s.createQueue(name, opts)
	if err != nil {
		return nil, errInvalid("%v", err)
	}
	return map[string]string{"QueueUrl": url}, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
