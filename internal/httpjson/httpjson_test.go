package httpjson

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"rates/internal/store"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		write  func(w http.ResponseWriter)
		status int
		body   string
	}{
		{"value", func(w http.ResponseWriter) { Write(w, http.StatusOK, map[string]string{"status": "ok"}) }, 200, `{"status":"ok"}` + "\n"},
		{"error", func(w http.ResponseWriter) { Error(w, http.StatusBadRequest, `bad "x"`) }, 400, `{"error":"bad \"x\""}` + "\n"},
		{"unencodable value is a 500", func(w http.ResponseWriter) { Write(w, http.StatusOK, math.NaN()) }, 500, `{"error":"internal error"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.write(rec)
			if rec.Code != tt.status || rec.Body.String() != tt.body || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %q (%s), want %d %q application/json", rec.Code, rec.Body, rec.Header().Get("Content-Type"), tt.status, tt.body)
			}
		})
	}
	rec := httptest.NewRecorder()
	Error(rec, http.StatusNotFound, "not found")
	if got := string(ErrorBody("not found")); got != rec.Body.String() {
		t.Fatalf("ErrorBody = %q, Error writes %q", got, rec.Body)
	}
}

type teapot struct{}

func (teapot) Error() string   { return "short and stout" }
func (teapot) HTTPStatus() int { return http.StatusTeapot }

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"says its status", fmt.Errorf("wrapped: %w", teapot{}), http.StatusTeapot},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, http.StatusInternalServerError},
		{"deadlock again after a retry", fmt.Errorf("read: %w", &store.RetriedError{Err: &pgconn.PgError{Code: "40P01"}}), http.StatusServiceUnavailable},
		{"serialisation failure", fmt.Errorf("load: %w", &pgconn.PgError{Code: "40001"}), http.StatusServiceUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, http.StatusServiceUnavailable},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, http.StatusServiceUnavailable},
		{"lock timeout", &pgconn.PgError{Code: "55P03"}, http.StatusServiceUnavailable},
		{"deadline", fmt.Errorf("load: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{"bad query", &pgconn.PgError{Code: "42703"}, http.StatusInternalServerError},
		{"bug", errors.New("nil map"), http.StatusInternalServerError},
	} {
		if got := StatusOf(tc.err); got != tc.want {
			t.Errorf("%s: StatusOf = %d, want %d", tc.name, got, tc.want)
		}
	}
}
