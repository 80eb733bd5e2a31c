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

	"rates/internal/config"
)

// Drainer is told when shutdown begins, before the listener closes, so readiness checks fail
// first and load balancers stop sending new requests.
type Drainer interface{ SetReady(bool) }

// Run serves h on ln until ctx is done. Then it reports not-ready, keeps serving for the drain
// delay, stops accepting, lets in-flight requests finish within the shutdown timeout and
// returns. A clean shutdown returns nil.
func Run(ctx context.Context, ln net.Listener, h http.Handler, cfg config.HTTP, shutdown config.Shutdown,
	drain Drainer, log *slog.Logger) error {
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
	log.Info("shutting down", "drain_delay", shutdown.DrainDelay.String(), "timeout", shutdown.Timeout.String())
	drain.SetReady(false)
	if shutdown.DrainDelay > 0 {
		select {
		case <-time.After(shutdown.DrainDelay):
		case err := <-serveErr:
			return fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdown.Timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("graceful shutdown did not finish within %s: %w", shutdown.Timeout, err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	log.Info("stopped")
	return nil
}
