package batchstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"rates/internal/batchstore"
	"rates/internal/testing/batchtest"
)

func TestNewRefusesIncompleteOptions(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	good := batchstore.Options{MaxErrors: 1, MaxBatchDuration: time.Second, Identity: batchtest.Identity}
	for name, opts := range map[string]batchstore.Options{
		"no MaxErrors":        {MaxBatchDuration: time.Second, Identity: batchtest.Identity},
		"no MaxBatchDuration": {MaxErrors: 1, Identity: batchtest.Identity},
		"no Identity":         {MaxErrors: 1, MaxBatchDuration: time.Second},
	} {
		if _, err := batchstore.New(pool, opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := batchstore.New(nil, good); err == nil {
		t.Error("no pool: accepted")
	}
	if _, err := batchstore.New(pool, good); err != nil {
		t.Error(err)
	}
}

func TestRegisterRefusesBadManifests(t *testing.T) {
	t.Parallel()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)
	good := spread(t, pool, 10, 2, 21).Manifest
	for name, change := range map[string]func(m *batchstore.Manifest){
		"no parts":          func(m *batchstore.Manifest) { m.Parts = nil },
		"a key twice":       func(m *batchstore.Manifest) { m.Parts[1].Key = m.Parts[0].Key },
		"an empty key":      func(m *batchstore.Manifest) { m.Parts[0].Key = "" },
		"a bad part sha256": func(m *batchstore.Manifest) { m.Parts[0].SHA256 = strings.ToUpper(m.Parts[0].SHA256) },
		"a bad sha256":      func(m *batchstore.Manifest) { m.SHA256 = "abc" },
		"an unknown mode":   func(m *batchstore.Manifest) { m.Mode = "merge" },
		"an unknown kind":   func(m *batchstore.Manifest) { m.SourceKind = "ftp" },
	} {
		m := good
		m.Parts = append([]batchstore.PartSpec(nil), good.Parts...)
		change(&m)
		if _, err := s.Register(context.Background(), m); err == nil {
			t.Errorf("%s: registered", name)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM batches WHERE status = 'staging'`); n != 0 {
		t.Errorf("%d batches registered", n)
	}
}

// A redelivered manifest, or a rerun of one on disk, finds the batch registered first, with
// its staged parts; a rerun after the publish of a file batch registers it again.
func TestRegisterFindsTheBatchOfAnEarlierDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := seeded(t)
	s := newStore(t, pool, time.Minute)

	file := spread(t, pool, 2_000, 2, 22)
	first := register(t, s, file)
	stageRest(t, s, first, batchtest.Batch{Parts: file.Parts[:1], Manifest: file.Manifest}, 1)
	again, err := s.Register(ctx, file.Manifest)
	if err != nil || !again.Resumed || again.BatchID != first {
		t.Fatalf("rerun of the manifest: %+v, %v; want batch %d resumed", again, err, first)
	}
	parts, err := s.Parts(ctx, first)
	if err != nil || len(parts) != 2 || parts[0].Status != "staged" || parts[1].Status != "pending" || parts[0].Attempts != 1 {
		t.Fatalf("parts: %+v, %v", parts, err)
	}
	if _, err := s.Publish(ctx, first); !errors.As(err, new(*batchstore.NotReadyError)) {
		t.Errorf("publish with a part pending: %v, want NotReadyError", err)
	}
	stageRest(t, s, first, file, 2)
	publish(t, s, first)
	if later, err := s.Register(ctx, file.Manifest); err != nil || later.Resumed || later.BatchID == first {
		t.Errorf("rerun after the publish: %+v, %v; want a new batch", later, err)
	}

	s3 := spread(t, pool, 1_000, 2, 23)
	s3.Manifest.SourceKind, s3.Manifest.SourceKey = "s3", "s3:bucket/incoming/manifests/m.json#v1"
	id := register(t, s, s3)
	if again, err := s.Register(ctx, s3.Manifest); err != nil || !again.Resumed || again.BatchID != id {
		t.Errorf("redelivery: %+v, %v; want batch %d", again, err, id)
	}
	stageAll(t, s, id, s3, 2)
	publish(t, s, id)
	if again, err := s.Register(ctx, s3.Manifest); err != nil || again.BatchID != id || again.Status != batchstore.StatusLoaded {
		t.Errorf("redelivery after the publish: %+v, %v; want batch %d loaded", again, err, id)
	}
	if _, err := s.Parts(ctx, 1<<40); !errors.Is(err, batchstore.ErrNoBatch) {
		t.Errorf("parts of no batch: %v", err)
	}
}
