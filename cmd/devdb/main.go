// Command devdb runs a command next to a local PostgreSQL started from the installed server
// binaries, with DATABASE_URL pointing at it; the server stops when the command ends.
//
//	devdb [-data DIR] [-port N] [-db NAME] -- command [args...]
//
// `make run` uses it so a fresh clone serves the API with no database set-up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5"

	"rates/internal/testing/pgserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			os.Exit(exitErr.ExitCode())
		}
		os.Exit(1)
	}
}

func run() error {
	dataDir := flag.String("data", ".data/postgres", "cluster directory, kept between runs")
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0: a free one)")
	dbName := flag.String("db", "rates", "database to create and hand to the command")
	flag.Parse()
	if flag.NArg() == 0 {
		return errors.New("usage: devdb [-data DIR] [-port N] [-db NAME] -- command [args...]")
	}
	ctx := context.Background()
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: *dataDir, Port: *port, Durable: true})
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "devdb: stop PostgreSQL:", err)
		}
	}()
	url, err := ensureDatabase(ctx, srv, *dbName)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "devdb: PostgreSQL on 127.0.0.1:%d, data in %s\n", srv.Port(), *dataDir)

	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
	if err := cmd.Start(); err != nil {
		return err
	}
	// Pass Ctrl-C and SIGTERM on to the command and wait for it to finish its shutdown.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	return cmd.Wait()
}

func ensureDatabase(ctx context.Context, srv *pgserver.Server, name string) (string, error) {
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return srv.URL(name), nil
	}
	return srv.CreateDatabase(ctx, name)
}
