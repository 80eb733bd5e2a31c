// Package server runs an HTTP server until its context ends, then drains it gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Config holds the server's timeouts and its shutdown behaviour.
type Config struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// DrainDelay keeps serving, with readiness false, so load balancers stop sending traffic
	// before the listener closes.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests once the listener is closed.
	ShutdownTimeout time.Duration
}

// Drainer is told when shutdown begins, before the listener closes, so readiness checks fail
// first and load balancers stop sending new requests.
type Drainer interface{ SetReady(bool) }

// Run serves h on ln until ctx is done. Then it reports not-ready, keeps serving for the drain
// delay, stops accepting, lets in-flight requests finish within the shutdown timeout and
// returns. A clean shutdown returns nil.
func Run(ctx context.Context, ln net.Listener, h http.Handler, cfg Config, drain Drainer, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain_delay", cfg.DrainDelay.String(), "timeout", cfg.ShutdownTimeout.String())
	drain.SetReady(false)
	if cfg.DrainDelay > 0 {
		select {
		case <-time.After(cfg.DrainDelay):
		case err := <-serveErr:
			return fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("graceful shutdown did not finish within %s: %w", cfg.ShutdownTimeout, err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	log.Info("stopped")
	return nil
}
