package httpjson

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
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
