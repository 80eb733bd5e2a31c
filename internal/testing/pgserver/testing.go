package pgserver

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

var databaseCounter atomic.Int64

// Main runs a test binary against one throwaway cluster shared by its tests; each test takes
// its own database from NewDatabase. Use it from TestMain: os.Exit(pgserver.Main(m, &srv)).
func Main(m *testing.M, srv **Server) int {
	s, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start PostgreSQL for the tests:", err)
		return 1
	}
	*srv = s
	code := m.Run()
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stop PostgreSQL:", err)
	}
	return code
}

// NewDatabase creates an empty database for one test and returns its connection string.
func NewDatabase(t testing.TB, s *Server) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", databaseCounter.Add(1), sanitize(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	url, err := s.CreateDatabase(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, name)
}
