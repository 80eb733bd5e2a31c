// Package httpjson writes the service's JSON responses: bodies, and errors as
// {"error": "<message>"}, each ended by a newline.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write sends v as JSON with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Error sends {"error": msg} with the given status.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, map[string]string{"error": msg})
}

// ErrorBody is the body Error writes, for answers that are stored before they are sent.
func ErrorBody(msg string) []byte {
	body, _ := json.Marshal(map[string]string{"error": msg})
	return append(body, '\n')
}
