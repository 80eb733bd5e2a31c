package pgserver

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A kept cluster under a private (0700) directory starts and keeps its data between runs,
// whoever runs it: as root the server runs as postgres, which cannot enter root's 0700 home,
// so the data moves to a directory it can reach (this is `make run` from a clone in /root).
func TestKeptClusterInPrivateDirectory(t *testing.T) {
	private := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(private, "clone", ".data", "postgres")
	ctx := context.Background()
	start := func() *Server {
		t.Helper()
		s, err := Start(ctx, Options{DataDir: dataDir})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	t.Cleanup(func() {
		if resolved, err := filepath.EvalSymlinks(dataDir); err == nil && resolved != dataDir {
			_ = os.RemoveAll(filepath.Dir(resolved))
		}
	})
	exec := func(s *Server, sql string) error {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(s, "CREATE TABLE kept (x int)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s = start()
	defer func() { _ = s.Stop() }()
	if err := exec(s, "SELECT x FROM kept"); err != nil {
		t.Fatalf("the data did not survive a restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		t.Fatalf("the data is not reachable at %s: %v", dataDir, err)
	}
}

// canTraverse reads owners and mode bits as the kernel does for the server's account.
func TestCanTraverse(t *testing.T) {
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	tests := []struct {
		name string
		mode os.FileMode
		cred syscall.Credential
		want bool
	}{
		{"owner with x", 0o700, syscall.Credential{Uid: uid, Gid: gid + 1}, true},
		{"owner without x", 0o600, syscall.Credential{Uid: uid, Gid: gid}, false},
		{"group with x", 0o710, syscall.Credential{Uid: uid + 1, Gid: gid}, true},
		{"group without x", 0o701, syscall.Credential{Uid: uid + 1, Gid: gid}, false},
		{"other with x", 0o701, syscall.Credential{Uid: uid + 1, Gid: gid + 1}, true},
		{"other without x", 0o770, syscall.Credential{Uid: uid + 1, Gid: gid + 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			// t.TempDir's own directories are 0700: open them so only d decides.
			for _, d := range []string{base, filepath.Dir(base)} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(base, "d")
			if err := os.Mkdir(dir, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			defer func() { _ = os.Chmod(dir, 0o700) }() // so that t.TempDir can remove it
			s := &Server{cred: &tt.cred}
			if got := s.canTraverse(filepath.Join(dir, "clone", ".data")); got != tt.want {
				t.Fatalf("canTraverse under a %o directory = %v, want %v", tt.mode, got, tt.want)
			}
		})
	}
}
