package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type readiness struct{ ready atomic.Bool }

func (r *readiness) SetReady(v bool) { r.ready.Store(v) }

var httpCfg = Config{ReadHeaderTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}

func withShutdown(timeout time.Duration) Config {
	c := httpCfg
	c.ShutdownTimeout = timeout
	return c
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// An in-flight request finishes with 200 after shutdown begins; readiness drops first; the
// listener closes; Run returns nil.
func TestGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ready := &readiness{}
	ready.SetReady(true)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- Run(ctx, ln, h, withShutdown(5*time.Second), ready, discard())
	}()

	respCh := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			respCh <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		respCh <- resp.Status + " " + string(b)
	}()
	<-entered
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for ready.ready.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if ready.ready.Load() {
		t.Fatal("readiness still true after shutdown began")
	}
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-runErr:
		t.Fatalf("Run returned %v before the in-flight request finished", err)
	default:
	}
	close(release)
	if got := <-respCh; got != "200 OK done" {
		t.Fatalf("in-flight request got %q, want 200 OK done", got)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestShutdownTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	h := http.HandlerFunc(func(_ http.ResponseWriter, _ *http.Request) {
		close(entered)
		time.Sleep(3 * time.Second)
	})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- Run(ctx, ln, h, withShutdown(200*time.Millisecond), &readiness{}, discard())
	}()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String()); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	select {
	case err := <-runErr:
		if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
			t.Fatalf("Run = %v, want a shutdown timeout error", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not give up after the shutdown timeout")
	}
}

// Slow clients that never finish their headers are cut off by ReadHeaderTimeout.
func TestSlowHeadersAreCutOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = Run(ctx, ln, http.NotFoundHandler(), withShutdown(time.Second), &readiness{}, discard())
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n") // never ends the headers
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow client held the connection for %s, want about ReadHeaderTimeout (1s)", d)
	}
}
