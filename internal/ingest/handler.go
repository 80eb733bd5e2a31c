package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"rates/internal/httpjson"
	"rates/internal/store"
)

// HandlerConfig configures POST /batches and GET and DELETE /batches/{id}.
type HandlerConfig struct {
	// Token is the bearer token clients must send. Empty disables the endpoints (404).
	Token string
	// MaxBytes bounds the request body as sent; larger bodies get 413. 0 means
	// DefaultMaxBatchBytes.
	MaxBytes int64
	// BodyTimeout replaces the server's read and write deadlines for this endpoint, whose
	// uploads take longer than an API request. 0 means 30 minutes.
	BodyTimeout time.Duration
	// MaxConcurrent bounds the uploads in progress (spooling or loading); one more gets 429
	// with Retry-After. 0 means DefaultMaxConcurrentUploads.
	MaxConcurrent int
	// SpoolDir is where bodies are spooled before the load; "" means the system's temporary
	// directory.
	SpoolDir string
}

// DefaultMaxBatchBytes is the body limit when none is configured.
const DefaultMaxBatchBytes = 512 << 20

// DefaultMaxConcurrentUploads is the upload limit when none is configured.
const DefaultMaxConcurrentUploads = 4

// maxIdempotencyKeyLength bounds the Idempotency-Key header.
const maxIdempotencyKeyLength = 255

// BatchHandler serves POST /batches, GET /batches/{id} and DELETE /batches/{id}.
//
// POST carries the batch as its body (Content-Type: text/csv, optionally Content-Encoding:
// gzip), a bearer token, a required Idempotency-Key header, and optionally ?kind=prices|ports|
// regions and ?mode=append|replace. The body is spooled to a temporary file before the
// database is touched, so a slow client holds no connection. Answers, all JSON:
//
//	201 {"batch_id", "status": "loaded", "kind", "mode", "rows", "displaced_rows", "duration_ms"}
//	200 the same body, status "duplicate" and the first batch's id: the content was loaded
//	    already (under any key); or the answer recorded for this Idempotency-Key
//	    (Idempotent-Replayed: true)
//	409 the Idempotency-Key was used before for different content
//	422 {"error", "batch_id", "bad_rows", "errors": [{"line", "column", "reason"}]}
//	                                           rejected (also on replay of a rejected batch)
//	400 missing or malformed Idempotency-Key, kind or mode; unreadable body
//	401 missing or wrong token (with WWW-Authenticate: Bearer)
//	404 the endpoint is disabled (no token configured)
//	413 body larger than the limit
//	415 not text/csv, or an encoding other than gzip
//	429 MaxConcurrent uploads in progress (with Retry-After)
//	503 database unavailable or the load past its deadline (with Retry-After)
//
// GET /batches/{id} answers the batch (BatchInfo); DELETE /batches/{id} reverts it (200 with a
// RevertResult, also when it was reverted already; 409 when it cannot be reverted).
type BatchHandler struct {
	loader *Loader
	cfg    HandlerConfig
	log    *slog.Logger
	token  [32]byte
	slots  chan struct{}

	deadlineWarning sync.Once
}

// NewBatchHandler returns the handler for /batches.
func NewBatchHandler(loader *Loader, cfg HandlerConfig, log *slog.Logger) *BatchHandler {
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 30 * time.Minute
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBatchBytes
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrentUploads
	}
	return &BatchHandler{loader: loader, cfg: cfg, log: log, token: sha256.Sum256([]byte(cfg.Token)),
		slots: make(chan struct{}, cfg.MaxConcurrent)}
}

// BatchCreated is the body of 201 and 200 answers.
type BatchCreated struct {
	BatchID       int64    `json:"batch_id"`
	Status        Status   `json:"status"`
	Kind          DataKind `json:"kind"`
	Mode          Mode     `json:"mode"`
	Rows          int64    `json:"rows"`
	DisplacedRows int64    `json:"displaced_rows"`
	DurationMS    int64    `json:"duration_ms"`
}

// BatchRejected is the body of a 422 answer.
type BatchRejected struct {
	Error   string     `json:"error"`
	BatchID int64      `json:"batch_id"`
	BadRows int64      `json:"bad_rows"`
	Errors  []RowError `json:"errors"`
}

// retryAfterBusy is the Retry-After of a 429: about the time a typical batch takes.
const retryAfterBusy = "10"

func (h *BatchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every answer describes one upload or one batch's state now; no cache may replay it.
	w.Header().Set("Cache-Control", "no-store")
	if h.cfg.Token == "" {
		httpjson.Error(w, http.StatusNotFound, "not found")
		return
	}
	rest, hasID := strings.CutPrefix(r.URL.Path, "/batches/")
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
	if hasID {
		id, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || id <= 0 {
			httpjson.Error(w, http.StatusNotFound, "no batch "+quote(rest))
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

func (h *BatchHandler) show(w http.ResponseWriter, r *http.Request, id int64) {
	b, err := h.loader.Batch(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, b)
}

func (h *BatchHandler) revert(w http.ResponseWriter, r *http.Request, id int64) {
	res, err := h.loader.Revert(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

func (h *BatchHandler) upload(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "text/csv" ||
		(params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		httpjson.Error(w, http.StatusUnsupportedMediaType, "Content-Type must be text/csv (UTF-8)")
		return
	}
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gz = true
	default:
		httpjson.Error(w, http.StatusUnsupportedMediaType, "Content-Encoding must be gzip or absent")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if reason := checkIdempotencyKey(key); reason != "" {
		httpjson.Error(w, http.StatusBadRequest, reason)
		return
	}
	q := r.URL.Query()
	kind, err := ParseDataKind(q.Get("kind"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "kind: "+err.Error())
		return
	}
	mode, err := ParseMode(q.Get("mode"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "mode: "+err.Error())
		return
	}
	if mode == ModeReplace && kind != DataPrices {
		httpjson.Error(w, http.StatusBadRequest, "mode=replace applies to price batches only")
		return
	}
	if r.ContentLength > h.cfg.MaxBytes {
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "batch larger than "+strconv.FormatInt(h.cfg.MaxBytes, 10)+" bytes")
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", retryAfterBusy)
		httpjson.Error(w, http.StatusTooManyRequests, fmt.Sprintf(
			"%d uploads in progress (INGEST_MAX_CONCURRENT_UPLOADS): retry later with the same Idempotency-Key", h.cfg.MaxConcurrent))
		return
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(h.cfg.BodyTimeout)
	if err := errors.Join(rc.SetReadDeadline(deadline), rc.SetWriteDeadline(deadline)); err != nil {
		// A middleware's ResponseWriter without Unwrap hides the connection: uploads are then
		// cut off at the server's own timeouts.
		h.deadlineWarning.Do(func() {
			h.log.Warn("cannot extend the server's deadlines for POST /batches; large uploads may time out", "error", err.Error())
		})
	}

	// Spool first: the database sees the batch only once it is all here.
	spool, err := os.CreateTemp(h.cfg.SpoolDir, "rates-batch-*")
	if err != nil {
		h.log.Error("cannot create a spool file for an upload", "error", err.Error())
		httpjson.Error(w, http.StatusInternalServerError, "internal error")
		return
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	if _, err := io.Copy(spool, http.MaxBytesReader(w, r.Body, h.cfg.MaxBytes)); err != nil {
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) && r.Context().Err() == nil && !isSpoolWriteError(err, spool) {
			err = &SourceError{Err: err}
		}
		h.fail(w, r, err)
		return
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		h.fail(w, r, fmt.Errorf("rewind spool file: %w", err))
		return
	}

	src := APISource(key, "POST /batches from "+r.RemoteAddr)
	src.Gzip, src.Data, src.Mode, src.ReceivedAt = gz, kind, mode, received
	res, err := h.loader.Load(r.Context(), src, spool)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if res.Status == StatusRejected {
		httpjson.Write(w, http.StatusUnprocessableEntity, BatchRejected{
			Error:   RejectionMessage(res.Report.BadRows),
			BatchID: res.BatchID, BadRows: res.Report.BadRows, Errors: res.Report.Errors,
		})
		return
	}
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	} else if res.Status == StatusDuplicate {
		status = http.StatusOK
	}
	httpjson.Write(w, status, BatchCreated{BatchID: res.BatchID, Status: res.Status, Kind: res.Source.Data,
		Mode: res.Source.Mode, Rows: res.Rows, DisplacedRows: res.DisplacedRows, DurationMS: res.Duration.Milliseconds()})
}

// isSpoolWriteError tells a failure to write the spool file (disk full) from a failure to
// read the request.
func isSpoolWriteError(err error, f *os.File) bool {
	var pathErr *os.PathError
	return errors.As(err, &pathErr) && pathErr.Path == f.Name()
}

// authorized checks the bearer token in constant time (over fixed-length digests, so the
// comparison does not reveal the token's length either).
func (h *BatchHandler) authorized(w http.ResponseWriter, r *http.Request) bool {
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

func (h *BatchHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	var srcErr *SourceError
	var conflict *KeyConflictError
	var refused *RevertRefusedError
	switch {
	case errors.As(err, &tooLarge):
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "batch larger than "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes")
	case r.Context().Err() != nil:
		// The client is gone; nothing was recorded and nobody reads the answer.
		h.log.Info("batch request abandoned by the client", "error", err.Error())
	case errors.As(err, &conflict):
		httpjson.Error(w, http.StatusConflict, fmt.Sprintf("Idempotency-Key %s was already used for different content (batch %d): use a new key for a new batch",
			quote(strings.TrimPrefix(conflict.Key, "api:")), conflict.BatchID))
	case errors.Is(err, ErrBatchNotFound):
		httpjson.Error(w, http.StatusNotFound, err.Error())
	case errors.As(err, &refused):
		httpjson.Error(w, http.StatusConflict, refused.Error())
	case errors.As(err, &srcErr):
		httpjson.Error(w, http.StatusBadRequest, "could not read the request body")
	case store.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		h.log.Error("batch request failed: database unavailable or too slow", "error", err.Error())
		w.Header().Set("Retry-After", "30")
		httpjson.Error(w, http.StatusServiceUnavailable, "database unavailable or busy, retry later with the same Idempotency-Key")
	default:
		h.log.Error("batch request failed", "error", err.Error())
		httpjson.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// isTimeout reports a statement or lock timeout: the load ran past its deadline.
func isTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "57014" || pgErr.Code == "55P03")
}

// RejectionMessage summarises a rejection for people.
func RejectionMessage(badRows int64) string {
	switch badRows {
	case 0: // the manifest of a multi-part batch, or a part's checksum: no row to blame
		return "batch rejected: see the errors"
	case 1:
		return "batch rejected: 1 bad row"
	}
	return "batch rejected: " + strconv.FormatInt(badRows, 10) + " bad rows"
}
