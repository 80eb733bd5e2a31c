// Package batchapi serves the /batches endpoints: POST uploads a batch (spooled to a
// temporary file, then loaded by ingest.Loader), GET shows one, DELETE reverts one.
package batchapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"rates/internal/config"
	"rates/internal/httpjson"
	"rates/internal/ingest"
	"rates/internal/ingest/csvbatch"
)

// Config configures POST /batches and GET and DELETE /batches/{id}.
type Config struct {
	// Token is the bearer token clients must send. Empty disables the endpoints (404).
	Token string
	// MaxBytes bounds the request body as sent; larger bodies get 413. 0 means
	// config.DefaultMaxBatchBytes.
	MaxBytes int64
	// MaxConcurrent bounds the uploads in progress (spooling or loading); one more gets 429
	// with Retry-After. 0 means config.DefaultMaxConcurrentUploads.
	MaxConcurrent int
	// Stop closes when the process begins to stop. An upload still in progress StopGrace
	// later is rolled back and answered 503 with Retry-After: StopGrace must end before the
	// server gives up on its requests.
	Stop      <-chan struct{}
	StopGrace time.Duration
	// Refused, when set, says why this instance cannot serve the endpoints (the database role
	// may not load batches): every request is answered 501 with it, after the token check.
	Refused string
}

// SpoolPattern names spool files (os.CreateTemp). Bodies are spooled in the system's temporary
// directory; a spool file is unlinked as soon as it is created, and RemoveStaleSpool clears what
// a release that kept them named left there.
const SpoolPattern = "rates-batch-*"

// bodyTimeout replaces the server's read and write deadlines for this endpoint, whose uploads
// take longer than an API request.
const bodyTimeout = 30 * time.Minute

// RemoveStaleSpool removes the spool files in dir ("" for the system's temporary directory) that
// a process killed mid-upload left there, and returns how many. Files of uploads in progress
// elsewhere have no name (see SpoolPattern), so none of them is touched.
func RemoveStaleSpool(dir string) (int, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	names, err := filepath.Glob(filepath.Join(dir, SpoolPattern))
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, name := range names {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// maxIdempotencyKeyLength bounds the Idempotency-Key header.
const maxIdempotencyKeyLength = 255

// Handler serves POST /batches, GET /batches/{id} and DELETE /batches/{id}.
//
// POST carries the batch as its body (Content-Type: text/csv, optionally Content-Encoding:
// gzip), a bearer token, a required Idempotency-Key header, and optionally ?kind=prices|ports|
// regions and ?mode=append|replace. The body is spooled to a temporary file before the
// database is touched, so a slow client holds no connection. Answers, all JSON:
//
//	201 {"batch_id", "status": "loaded", "kind", "mode", "rows", "displaced_rows", "duration_ms"}
//	200 the same body, status "duplicate" and the first batch's id: the rows were loaded
//	    already (under any key); or the answer recorded for this Idempotency-Key
//	    (Idempotent-Replayed: true)
//	409 the Idempotency-Key was used before for another body, kind or mode (answered before the
//	    body is read when the kind or mode differs); or BatchDisplaced: the rows are loaded,
//	    but later replaces took some of them out
//	422 {"error", "batch_id", "bad_rows", "errors": [{"line", "column", "reason"}]}
//	                                           rejected (also on replay of a rejected batch)
//	400 missing or malformed Idempotency-Key, kind or mode; an empty or unreadable body
//	401 missing or wrong token (with WWW-Authenticate: Bearer)
//	404 the endpoint is disabled (no token configured)
//	413 body larger than the limit as sent; or, with a rejected batch, once decompressed
//	415 not text/csv, or an encoding other than gzip
//	429 MaxConcurrent uploads in progress (with Retry-After)
//	501 the database role may not load batches (Config.Refused)
//	503 database unavailable, the load past its deadline, or the server stopping (with
//	    Retry-After)
//
// GET /batches/{id} answers the batch (ingest.BatchInfo); DELETE /batches/{id} reverts it (200 with a
// ingest.RevertResult, also when it was reverted already; 409 when it cannot be reverted).
type Handler struct {
	loader *ingest.Loader
	cfg    Config
	log    *slog.Logger
	token  [32]byte
	slots  chan struct{}

	deadlineWarning sync.Once
}

// New returns the handler for /batches.
func New(loader *ingest.Loader, cfg Config, log *slog.Logger) *Handler {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = config.DefaultMaxBatchBytes
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = config.DefaultMaxConcurrentUploads
	}
	if cfg.Stop == nil {
		cfg.Stop = make(chan struct{}) // never closes
	}
	return &Handler{loader: loader, cfg: cfg, log: log, token: sha256.Sum256([]byte(cfg.Token)),
		slots: make(chan struct{}, cfg.MaxConcurrent)}
}

// BatchCreated is the body of 201 and 200 answers.
type BatchCreated struct {
	BatchID       int64           `json:"batch_id"`
	Status        ingest.Status   `json:"status"`
	Kind          ingest.DataKind `json:"kind"`
	Mode          ingest.Mode     `json:"mode"`
	Rows          int64           `json:"rows"`
	DisplacedRows int64           `json:"displaced_rows"`
	DurationMS    int64           `json:"duration_ms"`
}

// BatchRejected is the body of a 422 answer.
type BatchRejected struct {
	Error   string              `json:"error"`
	BatchID int64               `json:"batch_id"`
	BadRows int64               `json:"bad_rows"`
	Errors  []csvbatch.RowError `json:"errors"`
}

// retryAfterBusy is the Retry-After of a 429: about the time a typical batch takes.
const retryAfterBusy = "10"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every answer describes one upload or one batch's state now; no cache may replay it.
	w.Header().Set("Cache-Control", "no-store")
	if h.cfg.Token == "" {
		httpjson.Error(w, http.StatusNotFound, "not found")
		return
	}
	// The router's pattern /batches/{id} names the batch; POST /batches has none.
	rest := r.PathValue("id")
	hasID := rest != ""
	allowed := http.MethodPost
	if hasID {
		allowed = "GET, DELETE"
	}
	if !hasID && r.Method != http.MethodPost || hasID && r.Method != http.MethodGet && r.Method != http.MethodDelete {
		w.Header().Set("Allow", allowed)
		httpjson.Error(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if !h.authorized(w, r) {
		return
	}
	if h.cfg.Refused != "" {
		w.Header().Set("Connection", "close") // the body is not read
		httpjson.Error(w, http.StatusNotImplemented, "batches are off on this instance: "+h.cfg.Refused)
		return
	}
	if hasID {
		id, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || id <= 0 {
			httpjson.Error(w, http.StatusNotFound, "no batch "+csvbatch.Quote(rest))
			return
		}
		if r.Method == http.MethodGet {
			h.show(w, r, id)
		} else {
			h.revert(w, r, id)
		}
		return
	}
	h.upload(w, r)
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request, id int64) {
	b, err := h.loader.Batch(r.Context(), id)
	if err != nil {
		h.fail(r.Context(), w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, b)
}

func (h *Handler) revert(w http.ResponseWriter, r *http.Request, id int64) {
	res, err := h.loader.Revert(r.Context(), id)
	if err != nil {
		h.fail(r.Context(), w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

// parseUpload reads what a POST /batches says before its body: the source of the batch, or
// why the request is refused (answered).
func (h *Handler) parseUpload(w http.ResponseWriter, r *http.Request) (ingest.Source, bool) {
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "text/csv" ||
		(params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		httpjson.Error(w, http.StatusUnsupportedMediaType, "Content-Type must be text/csv (UTF-8)")
		return ingest.Source{}, false
	}
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gz = true
	default:
		httpjson.Error(w, http.StatusUnsupportedMediaType, "Content-Encoding must be gzip or absent")
		return ingest.Source{}, false
	}
	key := r.Header.Get("Idempotency-Key")
	if reason := checkIdempotencyKey(key); reason != "" {
		httpjson.Error(w, http.StatusBadRequest, reason)
		return ingest.Source{}, false
	}
	q := r.URL.Query()
	kind, err := ingest.ParseDataKind(q.Get("kind"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "kind: "+err.Error())
		return ingest.Source{}, false
	}
	mode, err := ingest.ParseMode(q.Get("mode"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "mode: "+err.Error())
		return ingest.Source{}, false
	}
	if mode == ingest.ModeReplace && kind != ingest.DataPrices {
		httpjson.Error(w, http.StatusBadRequest, "mode=replace applies to price batches only")
		return ingest.Source{}, false
	}
	if r.ContentLength > h.cfg.MaxBytes {
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "batch larger than "+strconv.FormatInt(h.cfg.MaxBytes, 10)+" bytes")
		return ingest.Source{}, false
	}
	src := ingest.APISource(key, "POST /batches from "+r.RemoteAddr)
	src.Gzip, src.Data, src.Mode = gz, kind, mode
	return src, true
}

// takeSlot reserves one of the MaxConcurrent uploads, or answers 429.
func (h *Handler) takeSlot(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, true
	default:
		w.Header().Set("Retry-After", retryAfterBusy)
		httpjson.Error(w, http.StatusTooManyRequests, fmt.Sprintf(
			"%d uploads in progress (INGEST_MAX_CONCURRENT_UPLOADS): retry later with the same Idempotency-Key", h.cfg.MaxConcurrent))
		return nil, false
	}
}

// errStopping is the cause of an upload's context when the server stops before it is done.
var errStopping = errors.New("the server is stopping")

// cancelOnStop cancels an upload's context with errStopping StopGrace after Stop closes, and
// ends the reading of its body, so that the upload is answered before the server closes its
// connection. It returns when ctx ends.
func (h *Handler) cancelOnStop(ctx context.Context, cancel context.CancelCauseFunc, rc *http.ResponseController) {
	select {
	case <-h.cfg.Stop:
	case <-ctx.Done():
		return
	}
	t := time.NewTimer(h.cfg.StopGrace)
	defer t.Stop()
	select {
	case <-t.C:
		cancel(errStopping)
		_ = rc.SetReadDeadline(time.Now())
	case <-ctx.Done():
	}
}

func (h *Handler) upload(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	// Until the body is read, an answer ends the connection: the server would otherwise read
	// what is left of the body first, for as long as the client takes to send it.
	w.Header().Set("Connection", "close")
	src, ok := h.parseUpload(w, r)
	if !ok {
		return
	}
	release, ok := h.takeSlot(w)
	if !ok {
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(bodyTimeout)
	if err := errors.Join(rc.SetReadDeadline(deadline), rc.SetWriteDeadline(deadline)); err != nil {
		// A middleware's ResponseWriter without Unwrap hides the connection: uploads are then
		// cut off at the server's own timeouts.
		h.deadlineWarning.Do(func() {
			h.log.Warn("cannot extend the server's deadlines for POST /batches; large uploads may time out", "error", err.Error())
		})
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(context.Canceled)
	go h.cancelOnStop(ctx, cancel, rc)
	src.ReceivedAt = received

	// The key first: a retry of a recorded batch, or a key used for another kind or mode, is
	// answered without staging the body, and a conflict before reading it at all.
	first, found, err := h.loader.Find(ctx, src)
	if err != nil {
		h.fail(ctx, w, r, err)
		return
	}
	if found {
		if reason := first.Conflict(src, first); reason != "" {
			h.fail(ctx, w, r, &ingest.KeyConflictError{Key: src.Key, BatchID: first.RecordID, Reason: reason})
			return
		}
	}
	spool, size, err := h.spoolBody(w, r)
	if err != nil {
		h.fail(ctx, w, r, err)
		return
	}
	defer spool.Close()
	w.Header().Del("Connection")
	var res ingest.Result
	switch {
	case found:
		res, err = h.loader.Replay(ctx, src, first, spool)
	case size == 0:
		// Most likely a client that sent nothing by mistake: the key stays free for the batch.
		httpjson.Error(w, http.StatusBadRequest, "the request has no body: send the batch as the body (text/csv)")
		return
	default:
		res, err = h.loader.Load(ctx, src, spool)
	}
	if err != nil {
		h.fail(ctx, w, r, err)
		return
	}
	h.answer(w, res)
}

// spoolBody copies the request's body to a spool file and returns it rewound, with its size.
// The file has no name by the time the body is read: a crash leaves nothing behind.
func (h *Handler) spoolBody(w http.ResponseWriter, r *http.Request) (*os.File, int64, error) {
	spool, err := os.CreateTemp("", SpoolPattern)
	if err != nil {
		return nil, 0, fmt.Errorf("create a spool file for an upload: %w", err)
	}
	if err := os.Remove(spool.Name()); err != nil {
		spool.Close()
		return nil, 0, fmt.Errorf("unlink spool file: %w", err)
	}
	size, err := io.Copy(spool, http.MaxBytesReader(w, r.Body, h.cfg.MaxBytes))
	if err != nil {
		spool.Close()
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) && r.Context().Err() == nil && !isSpoolWriteError(err, spool) {
			err = &ingest.SourceError{Err: err}
		}
		return nil, 0, err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		spool.Close()
		return nil, 0, fmt.Errorf("rewind spool file: %w", err)
	}
	return spool, size, nil
}

// answer writes the outcome of an upload.
func (h *Handler) answer(w http.ResponseWriter, res ingest.Result) {
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	switch res.Status {
	case ingest.StatusRejected:
		status := http.StatusUnprocessableEntity
		if res.Report.TooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		httpjson.Write(w, status, BatchRejected{
			Error:   res.Report.Message(),
			BatchID: res.BatchID, BadRows: res.Report.BadRows, Errors: res.Report.Errors,
		})
		return
	case ingest.StatusDisplaced:
		httpjson.Write(w, http.StatusConflict, BatchDisplaced{
			Error: ingest.DisplacedMessage(res), BatchID: res.BatchID, Status: res.Status, DisplacedBy: res.DisplacedBy,
		})
		return
	}
	status := http.StatusCreated
	if res.Replayed || res.Status == ingest.StatusDuplicate {
		status = http.StatusOK
	}
	httpjson.Write(w, status, BatchCreated{BatchID: res.BatchID, Status: res.Status, Kind: res.Source.Data,
		Mode: res.Source.Mode, Rows: res.Rows, DisplacedRows: res.DisplacedRows, DurationMS: res.Duration.Milliseconds()})
}

// BatchDisplaced is the body of a 409 for content that is loaded, but no longer all in prices:
// later replaces took some of its rows out.
type BatchDisplaced struct {
	Error       string        `json:"error"`
	BatchID     int64         `json:"batch_id"`
	Status      ingest.Status `json:"status"`
	DisplacedBy []int64       `json:"displaced_by"`
}

// isSpoolWriteError tells a failure to write the spool file (disk full) from a failure to
// read the request.
func isSpoolWriteError(err error, f *os.File) bool {
	var pathErr *os.PathError
	return errors.As(err, &pathErr) && pathErr.Path == f.Name()
}

// authorized checks the bearer token in constant time (over fixed-length digests, so the
// comparison does not reveal the token's length either).
func (h *Handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if auth == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rates"`)
		httpjson.Error(w, http.StatusUnauthorized, "missing bearer token")
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], h.token[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rates", error="invalid_token"`)
		httpjson.Error(w, http.StatusUnauthorized, "invalid bearer token")
		return false
	}
	return true
}

func checkIdempotencyKey(key string) string {
	switch {
	case key == "":
		return "missing Idempotency-Key header: choose a unique key per batch and reuse it on retries"
	case len(key) > maxIdempotencyKeyLength:
		return "Idempotency-Key longer than " + strconv.Itoa(maxIdempotencyKeyLength) + " characters"
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return "Idempotency-Key must be printable ASCII without spaces"
		}
	}
	return ""
}

// fail answers err, the failure of the request whose work ran under ctx.
func (h *Handler) fail(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	var conflict *ingest.KeyConflictError
	switch {
	case errors.As(err, &tooLarge):
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "batch larger than "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes")
		return
	case errors.Is(context.Cause(ctx), errStopping):
		// Rolled back: nothing was recorded, and the same request may be sent again.
		h.log.Warn("batch request rolled back: the server is stopping", "error", err.Error())
		w.Header().Set("Retry-After", "30")
		w.Header().Set("Connection", "close")
		httpjson.Error(w, http.StatusServiceUnavailable, "the server is stopping: nothing was recorded; retry with the same Idempotency-Key")
		return
	case r.Context().Err() != nil:
		// The client is gone; nothing was recorded and nobody reads the answer.
		h.log.Info("batch request abandoned by the client", "error", err.Error())
		return
	}
	switch status := httpjson.StatusOf(err); {
	case errors.As(err, &conflict):
		httpjson.Error(w, status, fmt.Sprintf("Idempotency-Key %s was already used by batch %d %s: use a new key for a new batch",
			csvbatch.Quote(strings.TrimPrefix(conflict.Key, "api:")), conflict.BatchID, conflict.Reason))
	case status == http.StatusBadRequest:
		httpjson.Error(w, status, "could not read the request body")
	case status == http.StatusServiceUnavailable:
		h.log.Error("batch request failed: database unavailable or too slow", "error", err.Error())
		w.Header().Set("Retry-After", "30")
		httpjson.Error(w, status, "database unavailable or busy, retry later with the same Idempotency-Key")
	case status >= http.StatusInternalServerError:
		// A deadlock lands here too: loads and reverts take their locks in one order.
		h.log.Error("batch request failed", "error", err.Error())
		httpjson.Error(w, http.StatusInternalServerError, "internal error")
	default:
		httpjson.Error(w, status, err.Error())
	}
}
