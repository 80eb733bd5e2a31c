// Package ssmfake is an httptest stand-in for the SSM Parameter Store JSON API (GetParameter),
// so tests exercise the real aws-sdk-go-v2 client through AWS_ENDPOINT_URL_SSM.
package ssmfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Server holds parameters and records the requests it was sent.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	params   map[string]string
	requests []Request
}

// Request is one GetParameter call as received.
type Request struct {
	Name           string
	WithDecryption bool
	Signed         bool // carried a SigV4 Authorization header
}

// New starts a server holding params (name → SecureString value).
func New(params map[string]string) *Server {
	s := &Server{params: params}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	return s
}

// Requests returns the calls received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" {
		writeErr(w, http.StatusBadRequest, "UnknownOperationException", "unsupported operation "+r.Header.Get("X-Amz-Target"))
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in struct {
		Name           string
		WithDecryption bool
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeErr(w, http.StatusBadRequest, "ValidationException", err.Error())
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Name: in.Name, WithDecryption: in.WithDecryption,
		Signed: strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")})
	value, ok := s.params[in.Name]
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusBadRequest, "ParameterNotFound", "")
		return
	}
	if !in.WithDecryption {
		value = "AQICAHencryptedblob" // what SSM returns for a SecureString read without decryption
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
		"Name": in.Name, "Type": "SecureString", "Value": value, "Version": 1,
		"ARN": "arn:aws:ssm:us-east-1:000000000000:parameter" + in.Name,
	}})
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// Env returns the environment that points the SDK at this server with dummy credentials.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_SSM":        s.URL,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "test-secret",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	}
}
