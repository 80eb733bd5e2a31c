package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"rates/internal/httpjson"
	"rates/internal/store"
)

// HandlerConfig configures POST /batches.
type HandlerConfig struct {
	// Token is the bearer token clients must send. Empty disables the endpoint (404).
	Token string
	// MaxBytes bounds the request body as sent; larger bodies get 413. 0 means
	// DefaultMaxBatchBytes.
	MaxBytes int64
	// BodyTimeout replaces the server's read and write deadlines for this endpoint, whose
	// uploads take longer than an API request. 0 means 30 minutes.
	BodyTimeout time.Duration
}

// DefaultMaxBatchBytes is the body limit when none is configured.
const DefaultMaxBatchBytes = 512 << 20

// maxIdempotencyKeyLength bounds the Idempotency-Key header.
const maxIdempotencyKeyLength = 255

// BatchHandler serves POST /batches.
//
// The request carries the batch as its body (Content-Type: text/csv, optionally
// Content-Encoding: gzip), a bearer token, and a required Idempotency-Key header: the batch's
// identity, so a retried request never loads twice. Answers, all JSON:
//
//	201 {"batch_id", "rows", "duration_ms"}   loaded
//	200 the same body                          Idempotency-Key seen before and that batch loaded
//	                                           (the body is not read; Idempotent-Replayed: true)
//	422 {"error", "batch_id", "bad_rows", "errors": [{"line", "column", "reason"}]}
//	                                           rejected (also on replay of a rejected batch)
//	400 missing or malformed Idempotency-Key, unreadable body
//	401 missing or wrong token (with WWW-Authenticate: Bearer)
//	404 the endpoint is disabled (no token configured)
//	405 not POST
//	413 body larger than the limit
//	415 not text/csv, or an encoding other than gzip
//	503 database unavailable (with Retry-After)
type BatchHandler struct {
	loader *Loader
	cfg    HandlerConfig
	log    *slog.Logger
	token  [32]byte

	deadlineWarning sync.Once
}

// NewBatchHandler returns the handler for POST /batches.
func NewBatchHandler(loader *Loader, cfg HandlerConfig, log *slog.Logger) *BatchHandler {
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 30 * time.Minute
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBatchBytes
	}
	return &BatchHandler{loader: loader, cfg: cfg, log: log, token: sha256.Sum256([]byte(cfg.Token))}
}

// BatchCreated is the body of 201 and 200 answers.
type BatchCreated struct {
	BatchID    int64 `json:"batch_id"`
	Rows       int64 `json:"rows"`
	DurationMS int64 `json:"duration_ms"`
}

// BatchRejected is the body of a 422 answer.
type BatchRejected struct {
	Error   string     `json:"error"`
	BatchID int64      `json:"batch_id"`
	BadRows int64      `json:"bad_rows"`
	Errors  []RowError `json:"errors"`
}

func (h *BatchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every answer describes one upload; no cache may replay it.
	w.Header().Set("Cache-Control", "no-store")
	if h.cfg.Token == "" {
		httpjson.Error(w, http.StatusNotFound, "not found")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpjson.Error(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if !h.authorized(w, r) {
		return
	}
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
	if r.ContentLength > h.cfg.MaxBytes {
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "batch larger than "+strconv.FormatInt(h.cfg.MaxBytes, 10)+" bytes")
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

	src := APISource(key, "POST /batches from "+r.RemoteAddr)
	src.Gzip = gz
	res, err := h.loader.Load(r.Context(), src, http.MaxBytesReader(w, r.Body, h.cfg.MaxBytes))
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
	}
	httpjson.Write(w, status, BatchCreated{BatchID: res.BatchID, Rows: res.Rows, DurationMS: res.Duration.Milliseconds()})
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
	switch {
	case errors.As(err, &tooLarge):
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "batch larger than "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes")
	case r.Context().Err() != nil:
		// The client is gone; nothing was recorded and nobody reads the answer.
		h.log.Info("batch upload abandoned by the client", "error", err.Error())
	case errors.As(err, &srcErr):
		httpjson.Error(w, http.StatusBadRequest, "could not read the request body")
	case store.IsUnavailable(err):
		h.log.Error("batch load failed: database unavailable", "error", err.Error())
		w.Header().Set("Retry-After", "30")
		httpjson.Error(w, http.StatusServiceUnavailable, "database unavailable, retry later with the same Idempotency-Key")
	default:
		h.log.Error("batch load failed", "error", err.Error())
		httpjson.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// RejectionMessage summarises a rejection for people.
func RejectionMessage(badRows int64) string {
	if badRows == 1 {
		return "batch rejected: 1 bad row"
	}
	return "batch rejected: " + strconv.FormatInt(badRows, 10) + " bad rows"
}
