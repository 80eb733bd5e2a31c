// Package pgserver runs a throwaway PostgreSQL cluster from the server binaries installed on
// the machine. Tests use it so that every query runs against a real server, and `make run`
// uses it for a local database that needs no set-up.
package pgserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	// Settings are name=value server settings given after the defaults (they win over them).
	Settings []string
	// Log receives the server's output; nil discards it.
	Log *os.File
	// Password, when set, is the superuser's password and TCP connections must prove it
	// (scram-sha-256); URL carries it. Empty: trust, no password.
	Password string
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
		if s.cred != nil {
			if abs, err = s.reachableDataDir(abs); err != nil {
				return nil, err
			}
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
	userinfo := url.User(superuser)
	if s.opts.Password != "" {
		userinfo = url.UserPassword(superuser, s.opts.Password)
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     userinfo,
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
	args := []string{"-D", s.dataDir, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"}
	if s.opts.Password != "" {
		pwfile := filepath.Join(filepath.Dir(s.dataDir), "pwfile")
		if err := os.WriteFile(pwfile, []byte(s.opts.Password+"\n"), 0o600); err != nil {
			return fmt.Errorf("pgserver: write password file: %w", err)
		}
		defer os.Remove(pwfile)
		if err := s.chown(pwfile); err != nil {
			return err
		}
		args = append(args, "--pwfile="+pwfile, "--auth-host=scram-sha-256")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "initdb"), args...)
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
	for _, kv := range s.opts.Settings {
		args = append(args, "-c", kv)
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
			return fmt.Errorf("pgserver: postgres exited during start-up on port %d: %w", s.port, err)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			_ = <-done // killed: its exit status says nothing
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if s.ping(ctx) == nil {
			s.cmd, s.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = <-done // killed: its exit status says nothing
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

// reachableDataDir returns where the server keeps a data directory asked for at dir. The server
// runs as the postgres account, which must traverse every parent of its data directory; a clone
// under root's 0700 home is out of its reach. The data then lives in a directory of its own
// under the system temp dir, named after dir so that every run finds it again, and dir becomes
// a symlink to it.
func (s *Server) reachableDataDir(dir string) (string, error) {
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved // an earlier run's symlink, or a real directory
	}
	if s.canTraverse(filepath.Dir(dir)) {
		return dir, nil
	}
	sum := sha256.Sum256([]byte(dir))
	home := filepath.Join(os.TempDir(), "rates-pg-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("pgserver: create %s: %w", home, err)
	}
	if err := s.chown(home); err != nil {
		return "", err
	}
	target := filepath.Join(home, filepath.Base(dir))
	if info, err := os.Lstat(dir); err == nil {
		// A dangling symlink (the temp dir was cleaned) or an empty directory left by a run
		// that could not start: replace it. A directory with data in it stays and fails below.
		if info.IsDir() || info.Mode()&os.ModeSymlink != 0 {
			if err := os.Remove(dir); err != nil {
				return "", fmt.Errorf("pgserver: %s is not reachable by the postgres account and cannot be replaced by a symlink: %w", dir, err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("pgserver: create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Symlink(target, dir); err != nil {
		return "", fmt.Errorf("pgserver: link %s to %s: %w", dir, target, err)
	}
	return target, nil
}

// canTraverse tells whether the server's account may enter dir and each of its parents, from
// their owners and mode bits (not ACLs or supplementary groups, which would only make the
// answer too cautious).
func (s *Server) canTraverse(dir string) bool {
	for ; ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// Created 0755 by Start: the parents decide.
		case err != nil:
			return false
		default:
			st, ok := info.Sys().(*syscall.Stat_t)
			if !ok {
				return true
			}
			var bit os.FileMode = 0o001
			switch {
			case st.Uid == s.cred.Uid:
				bit = 0o100
			case st.Gid == s.cred.Gid:
				bit = 0o010
			}
			if info.Mode().Perm()&bit == 0 {
				return false
			}
		}
		if filepath.Dir(dir) == dir {
			return true
		}
	}
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
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
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
