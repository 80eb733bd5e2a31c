package ingest

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"
	"sync"
)

// Kind says which entry point a batch came through.
type Kind string

// Where batches come from.
const (
	KindS3   Kind = "s3"
	KindAPI  Kind = "api"
	KindFile Kind = "file"
)

// Source identifies a batch. Two loads with the same Key are the same batch: the second
// returns the first one's result and reads nothing.
type Source struct {
	Kind Kind
	// Key is the batch's identity, unique across kinds (see the constructors).
	Key string
	// Name tells people where the batch came from: an s3:// URL, a path, a client address.
	Name string
	// Gzip says the content was declared gzip-encoded (S3 or HTTP Content-Encoding). Gzip data
	// is recognised by its magic bytes either way; the declaration only makes plain data an error.
	Gzip bool
	// SHA256, when known beforehand, must match the bytes read, or the load fails.
	SHA256 string
}

// maxKeyLength bounds the identity stored in the batches table.
const maxKeyLength = 2048

// S3Source identifies one version of an object. Without a version id (an unversioned bucket)
// the ETag stands in, so an overwritten object is a new batch.
func S3Source(bucket, key, versionID, etag string) Source {
	u := "s3://" + bucket + "/" + key
	id := u
	switch {
	case versionID != "" && versionID != "null":
		id += "?versionId=" + url.QueryEscape(versionID)
	case etag != "":
		id += "?etag=" + url.QueryEscape(strings.Trim(etag, `"`))
	}
	return Source{Kind: KindS3, Key: id, Name: u}
}

// APISource identifies a POST /batches request by its Idempotency-Key.
func APISource(idempotencyKey, name string) Source {
	return Source{Kind: KindAPI, Key: "api:" + idempotencyKey, Name: name}
}

// FileSource identifies a local file by its content, so the same file loads once from any path.
func FileSource(path, sha256Hex string) Source {
	return Source{Kind: KindFile, Key: "file:sha256:" + sha256Hex, Name: path, SHA256: sha256Hex}
}

func (s Source) validate() error {
	switch {
	case s.Kind != KindS3 && s.Kind != KindAPI && s.Kind != KindFile:
		return fmt.Errorf("unknown source kind %q", s.Kind)
	case s.Key == "":
		return errors.New("source has no key")
	case len(s.Key) > maxKeyLength:
		return fmt.Errorf("source key is longer than %d bytes", maxKeyLength)
	}
	return nil
}

// SourceError is a failure to read the batch itself (the client went away, the body was too
// large, the S3 stream broke), as opposed to a database failure or bad data.
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return "read batch: " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// sourceReader counts and hashes the raw bytes and remembers the first read error. COPY reads
// it from another goroutine, which may still be blocked in Read when a failed COPY returns,
// hence the lock around err.
type sourceReader struct {
	r     io.Reader
	h     hash.Hash
	bytes int64

	mu  sync.Mutex
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.bytes += int64(n)
	s.h.Write(p[:n])
	if err != nil && !errors.Is(err, io.EOF) {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

// Err returns the first error the source returned, other than EOF.
func (s *sourceReader) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// errReader hands a decoding problem to the converter, which reports it as a rejection.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// decode returns the batch's CSV text: the bytes as they are, or gunzipped when they start
// with the gzip magic bytes. A source error is returned; a data problem comes back as a reader
// that fails, so it ends up in the batch's report.
func decode(src *sourceReader, declaredGzip bool) (io.Reader, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			if srcErr := src.Err(); srcErr != nil {
				return nil, srcErr
			}
			return errReader{err}, nil
		}
		return zr, nil
	}
	if declaredGzip {
		return errReader{errors.New("declared gzip-encoded, but the data is not gzip")}, nil
	}
	return br, nil
}
