// Package pgserver runs a throwaway PostgreSQL cluster from the server binaries installed on
// the machine. Tests use it so that every query runs against a real server, and `make run`
// uses it for a local database that needs no set-up.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure a cluster. The zero value is a throwaway cluster in a new temp dir on a free port.
type Options struct {
	// DataDir keeps the cluster between runs when set; otherwise a temp dir is created and
	// removed by Stop.
	DataDir string
	// Port to listen on (127.0.0.1); 0 picks a free one.
	Port int
	// BinDir holds initdb and postgres; empty searches PG_BINDIR, PATH and /usr/lib/postgresql.
	BinDir string
	// Durable keeps fsync on. Throwaway test clusters turn it off for speed.
	Durable bool
	// Log receives the server's output; nil discards it.
	Log *os.File
}

// Server is a running (or stopped) cluster.
type Server struct {
	opts    Options
	binDir  string
	dataDir string
	sockDir string
	port    int
	tempDir bool
	cred    *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

const superuser = "postgres"

// Start initialises the cluster if needed and starts the server, waiting until it accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	binDir, err := findBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, binDir: binDir, port: opts.Port}
	if s.cred, err = credentials(); err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		// Directly under the system temp dir: the server may run as another user, who must
		// be able to reach the directory.
		dir, err := os.MkdirTemp("", "rates-pg-")
		if err != nil {
			return nil, fmt.Errorf("pgserver: create temp dir: %w", err)
		}
		s.dataDir, s.tempDir = filepath.Join(dir, "data"), true
		s.sockDir = dir
	} else {
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("pgserver: data dir %s: %w", opts.DataDir, err)
		}
		s.dataDir = abs
		s.sockDir = filepath.Dir(abs)
		if err := os.MkdirAll(s.sockDir, 0o755); err != nil {
			return nil, fmt.Errorf("pgserver: create %s: %w", s.sockDir, err)
		}
	}
	if err := s.chown(s.sockDir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := s.initdb(ctx); err != nil {
			s.cleanup()
			return nil, err
		}
	}
	if err := s.Restart(ctx); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// Port is the TCP port the server listens on (127.0.0.1).
func (s *Server) Port() int { return s.port }

// URL is a connection string for database name as the superuser.
func (s *Server) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates a fresh, empty database and returns its connection string.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgserver: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return "", fmt.Errorf("pgserver: create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

func (s *Server) initdb(ctx context.Context) error {
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return fmt.Errorf("pgserver: create %s: %w", s.dataDir, err)
	}
	if err := s.chown(s.dataDir); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "initdb"),
		"-D", s.dataDir, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgserver: initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Restart starts the server again after Stop, on the same port and data.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgserver: already running")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if s.opts.Port == 0 && (attempt > 0 || s.port == 0) {
			port, err := freePort()
			if err != nil {
				return err
			}
			s.port = port
		}
		if lastErr = s.startProcess(ctx); lastErr == nil {
			return nil
		}
		if s.opts.Port != 0 {
			break
		}
	}
	return lastErr
}

func (s *Server) startProcess(ctx context.Context) error {
	args := []string{
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + s.sockDir,
		"-c", "max_connections=300",
		"-c", "shared_buffers=128MB",
	}
	if !s.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	if s.opts.Log != nil {
		cmd.Stdout, cmd.Stderr = s.opts.Log, s.opts.Log
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgserver: start postgres: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			return fmt.Errorf("pgserver: postgres exited during start-up on port %d: %v", s.port, err)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if s.ping(ctx) == nil {
			s.cmd, s.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("pgserver: postgres on port %d not ready after 30s", s.port)
		}
	}
}

func (s *Server) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// Stop shuts the server down (fast mode: open transactions roll back) and keeps the data.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	var err error
	select {
	case err = <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		err = <-s.done
	}
	s.cmd, s.done = nil, nil
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return nil // a signalled exit is the expected end
	}
	return err
}

// Close stops the server and removes a throwaway data dir.
func (s *Server) Close() error {
	err := s.Stop()
	s.cleanup()
	return err
}

func (s *Server) cleanup() {
	if s.tempDir {
		_ = os.RemoveAll(s.sockDir)
	}
}

// chown hands a directory to the account the server runs as (PostgreSQL refuses to run as root).
func (s *Server) chown(dir string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("pgserver: chown %s: %w", dir, err)
	}
	return nil
}

// credentials picks the postgres account when running as root, since the server refuses root.
func credentials() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root needs a 'postgres' account to run the server as: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func findBinDir(explicit string) (string, error) {
	candidates := []string{explicit, os.Getenv("PG_BINDIR")}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Distributions link initdb into PATH; the other tools sit beside the real file.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		candidates = append(candidates, filepath.Dir(p))
	}
	installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(installed, func(i, j int) bool { return versionOf(installed[i]) > versionOf(installed[j]) })
	candidates = append(candidates, installed...)
	candidates = append(candidates, "/usr/local/pgsql/bin")
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", errors.New("pgserver: no PostgreSQL server binaries (initdb, postgres) found; " +
		"install them (Debian: apt-get install postgresql) or set PG_BINDIR")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// BinDir is the directory of the server binaries in use (pg_dump and psql live there too).
func (s *Server) BinDir() string { return s.binDir }

// Pid is the process id of the running postmaster (0 when stopped), for benchmarks that
// account the server's CPU time.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
