package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"rates/internal/testing/pgserver"
)

// root is the repository root, whose service this module checks.
const root = "../.."

var srv *pgserver.Server

func TestMain(m *testing.M) { os.Exit(pgserver.Main(m, &srv)) }

// service is `rates serve` built from the repository and running as a process.
type service struct {
	addr string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

// startServe builds the service and runs `rates serve` with env, waits until it is ready, and
// stops it with SIGTERM when the test ends.
func startServe(t *testing.T, env map[string]string) *service {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rates")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rates")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rates: %v\n%s", err, out)
	}
	s := &service{addr: env["HTTP_ADDR"], logs: &bytes.Buffer{}}
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("rates serve exited with %v after SIGTERM, want status 0\n%s", err, s.logs)
			}
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			_ = <-exited // killed: its exit status says nothing
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("rates serve exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("rates serve not ready after 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// openAPI is api/openapi.yaml as a JSON document, for schema validation.
type openAPI struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(y)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(js, &m)
	if m["openapi"] != "3.1.0" {
		t.Fatalf("openapi version %v, want 3.1.0", m["openapi"])
	}
	return openAPI{doc: m, compiler: c}
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// notModified checks a 304 against its documented response: no body, and every header the
// document lists for it.
func (o openAPI) notModified(path, method string, header http.Header, body []byte) error {
	op, _ := o.doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	resp, ok := op["responses"].(map[string]any)["304"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s %s: 304 not documented", method, path)
	}
	if len(body) != 0 {
		return fmt.Errorf("%s %s: 304 with a body of %d bytes", method, path, len(body))
	}
	for name := range resp["headers"].(map[string]any) {
		if header.Get(name) == "" {
			return fmt.Errorf("%s %s: 304 without its documented header %s", method, path, name)
		}
	}
	return nil
}

// response finds the documented response and the JSON pointer of its schema for a media type.
func (o openAPI) response(path, method string, status int, mediaType string) (pointer string, err error) {
	paths, _ := o.doc["paths"].(map[string]any)
	item, ok := paths[path].(map[string]any)
	if !ok {
		return "", fmt.Errorf("path %s not documented", path)
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		return "", fmt.Errorf("%s %s not documented", method, path)
	}
	responses, _ := op["responses"].(map[string]any)
	resp, ok := responses[fmt.Sprint(status)].(map[string]any)
	if !ok {
		return "", fmt.Errorf("%s %s: status %d not documented", method, path, status)
	}
	base := fmt.Sprintf("#/paths/%s/%s/responses/%d", escapePointer(path), strings.ToLower(method), status)
	if ref, ok := resp["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/responses/")
		resp, _ = o.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
		base = "#/components/responses/" + escapePointer(name)
	}
	content, _ := resp["content"].(map[string]any)
	if _, ok := content[mediaType]; !ok {
		return "", fmt.Errorf("%s %s %d: media type %s not documented", method, path, status, mediaType)
	}
	return base + "/content/" + escapePointer(mediaType) + "/schema", nil
}

// TestOpenAPIMatchesResponses sends real requests to a running service and validates each
// answer (status, media type, body) against api/openapi.yaml, and checks that every documented
// operation and status is exercised, apart from those only a fault can cause.
func TestOpenAPIMatchesResponses(t *testing.T) {
	spec := loadOpenAPI(t)
	const token = "test-token-0123456789abcdef"
	r := startServe(t, map[string]string{
		"DATABASE_URL": pgserver.NewDatabase(t, srv), "HTTP_ADDR": freeAddr(t), "MIGRATE_ON_START": "true",
		"SEED_FILE":        filepath.Join(root, "db", "seed", "rates.sql"),
		"INGEST_API_TOKEN": token, "INGEST_MAX_BATCH_BYTES": "4096",
	})

	csv := "orig_code,dest_code,day,price\nCNSHA,NLRTM,2026-03-01,1200\n"
	badCSV := "orig_code,dest_code,day,price\nCNSHA,NOPE1,2026-03-01,1200\n"
	auth := map[string]string{"Authorization": "Bearer " + token, "Content-Type": "text/csv"}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	cases := []struct {
		method, path, query string
		headers             map[string]string
		body                string
		status              int
	}{
		{"GET", "/", "", nil, "", 200},
		{"GET", "/rates", "date_from=2026-01-01&date_to=2026-01-31&orig_code=CNSHA&dest_code=NLRTM", nil, "", 200},
		{"GET", "/rates", "date_from=2026-01-01&date_to=2026-01-05&orig_code=china&dest_code=europe", nil, "", 200},
		{"GET", "/rates", "date_from=2026-01-01&date_to=2026-01-05&orig_code=china&dest_code=europe", map[string]string{"If-None-Match": "*"}, "", 304},
		{"GET", "/rates", "date_from=2026-01-31&date_to=2026-01-01&orig_code=CNSHA&dest_code=NLRTM", nil, "", 400},
		{"GET", "/rates", "date_from=2026-01-01&date_to=2026-01-02&orig_code=XXXXX&dest_code=NLRTM", nil, "", 400},
		{"GET", "/rates", "x=" + strings.Repeat("y", 5000), nil, "", 414},
		{"GET", "/healthz", "", nil, "", 200},
		{"GET", "/readyz", "", nil, "", 200},
		{"GET", "/metrics", "", nil, "", 200},
		{"GET", "/", "x=" + strings.Repeat("y", 5000), nil, "", 414},
		{"GET", "/healthz", "x=" + strings.Repeat("y", 5000), nil, "", 414},
		{"GET", "/readyz", "x=" + strings.Repeat("y", 5000), nil, "", 414},
		{"GET", "/metrics", "x=" + strings.Repeat("y", 5000), nil, "", 414},
		{"POST", "/batches", "", with(auth, "Idempotency-Key", "k1"), csv, 201},
		{"POST", "/batches", "", with(auth, "Idempotency-Key", "k1"), csv, 200},
		{"POST", "/batches", "", with(auth, "Idempotency-Key", "k2"), badCSV, 422},
		{"POST", "/batches", "", auth, csv, 400},
		{"POST", "/batches", "", map[string]string{"Content-Type": "text/csv", "Idempotency-Key": "k3"}, csv, 401},
		{"POST", "/batches", "", with(auth, "Idempotency-Key", "k4", "Content-Type", "application/json"), "{}", 415},
		{"POST", "/batches", "", with(auth, "Idempotency-Key", "k5"), csv + strings.Repeat("CNSHA,NLRTM,2026-03-02,1\n", 400), 413},
		{"POST", "/batches", "", with(auth, "Idempotency-Key", "k1"), badCSV, 409},
		{"GET", "/batches/2", "", auth, "", 200},
		{"GET", "/batches/999", "", auth, "", 404},
		{"GET", "/batches/2", "", nil, "", 401},
		{"DELETE", "/batches/3", "", auth, "", 409}, // the rejected batch loaded nothing
		{"DELETE", "/batches/2", "", auth, "", 200},
		{"DELETE", "/batches/2", "", auth, "", 200}, // a no-op the second time
		{"DELETE", "/batches/999", "", auth, "", 404},
		{"DELETE", "/batches/2", "", nil, "", 401},
	}
	covered := map[string]bool{}
	// What the answers without an Authorization header show: public operations answer them,
	// protected ones refuse them with 401.
	anonymous := map[string]int{}
	for _, c := range cases {
		docPath := c.path
		if strings.HasPrefix(docPath, "/batches/") {
			docPath = "/batches/{id}"
		}
		name := fmt.Sprintf("%s %s %d", c.method, docPath, c.status)
		t.Run(name, func(t *testing.T) {
			target := "http://" + r.addr + c.path
			if c.query != "" {
				target += "?" + c.query
			}
			req, err := http.NewRequest(c.method, target, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.status == http.StatusNotModified {
				// No body to validate: the documented validator and caching headers.
				if err := spec.notModified(docPath, c.method, resp.Header, body); err != nil {
					t.Fatal(err)
				}
				covered[name] = true
				return
			}
			mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			pointer, err := spec.response(docPath, c.method, c.status, mediaType)
			if err != nil {
				t.Fatal(err)
			}
			sch, err := spec.compiler.Compile("openapi.json" + pointer)
			if err != nil {
				t.Fatalf("compile %s: %v", pointer, err)
			}
			var inst any = string(body)
			if mediaType == "application/json" {
				if inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
					t.Fatalf("body is not JSON: %v: %s", err, body)
				}
			}
			if err := sch.Validate(inst); err != nil {
				t.Fatalf("response does not match %s: %v\n%s", pointer, err, body)
			}
			covered[name] = true
			if _, auth := c.headers["Authorization"]; !auth && (c.status < 400 || c.status == 401) {
				anonymous[c.method+" "+docPath] = c.status
			}
		})
	}
	checkSecurity(t, spec, anonymous)
	// Statuses that take a fault to provoke; the chaos tests and internal/api cover them.
	faultOnly := []string{"GET /rates 503", "GET /readyz 503", "POST /batches 503", "POST /batches 404", "POST /batches 501",
		"POST /batches 429", "GET /batches/{id} 503", "DELETE /batches/{id} 503"}
	for path, item := range spec.doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if method == "parameters" { // shared by the path's operations
				continue
			}
			for status := range op.(map[string]any)["responses"].(map[string]any) {
				name := fmt.Sprintf("%s %s %s", strings.ToUpper(method), path, status)
				if !covered[name] && !slices.Contains(faultOnly, name) {
					t.Errorf("documented but not exercised: %s", name)
				}
			}
		}
	}
}

// checkSecurity checks that every operation declares its security, and that the declaration is
// what the service does: an operation with `security: []` answered a request without an
// Authorization header, one with a bearer requirement refused such a request with 401.
func checkSecurity(t *testing.T, spec openAPI, anonymous map[string]int) {
	t.Helper()
	for path, item := range spec.doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			name := strings.ToUpper(method) + " " + path
			security, declared := op.(map[string]any)["security"].([]any)
			status, seen := anonymous[name]
			switch {
			case !declared:
				t.Errorf("%s declares no security: public operations say security: []", name)
			case !seen:
				t.Errorf("%s: no request without an Authorization header shows whether it is public", name)
			case len(security) == 0 && status == http.StatusUnauthorized:
				t.Errorf("%s says security: [] but refused a request without a token (401)", name)
			case len(security) > 0 && status != http.StatusUnauthorized:
				t.Errorf("%s requires %v but answered %d without a token", name, security, status)
			}
		}
	}
}
