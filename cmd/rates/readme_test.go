package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"rates/internal/testing/pgserver"
)

// TestReadmeExamples runs every `$ curl -s 'localhost:3000/...'` line of the README's console
// blocks against the service on the default dump and compares the body with the line after it.
func TestReadmeExamples(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	type example struct{ target, want string }
	var examples []example
	lines := strings.Split(string(raw), "\n")
	for i, line := range lines {
		cmd, ok := strings.CutPrefix(line, "$ curl -s '")
		if !ok {
			continue
		}
		target, ok := strings.CutSuffix(cmd, "'")
		if !ok || !strings.HasPrefix(target, "localhost:3000/") || i+1 >= len(lines) {
			t.Fatalf("README line %d: an example must read $ curl -s 'localhost:3000/...': %q", i+1, line)
		}
		examples = append(examples, example{strings.TrimPrefix(target, "localhost:3000"), lines[i+1]})
	}
	if len(examples) < 5 {
		t.Fatalf("found %d curl examples in the README, want at least 5", len(examples))
	}
	r := startServe(t, map[string]string{
		"DATABASE_URL": pgserver.NewDatabase(t, srv), "HTTP_ADDR": freeAddr(t), "SEED_FILE": defaultDump, "MIGRATE_ON_START": "true",
	})
	r.waitReady(t)
	for _, ex := range examples {
		u, err := url.Parse("http://" + r.addr + ex.target)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.TrimSuffix(string(body), "\n"); got != ex.want {
			t.Errorf("curl %s\n got  %s\n README %s", ex.target, got, ex.want)
		}
	}
}
