package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"rates/internal/ingest/csvbatch"
)

// Channel says which entry point a batch came through: S3 (the worker), the API or a file.
type Channel string

// Where batches come from.
const (
	ChannelS3   Channel = "s3"
	ChannelAPI  Channel = "api"
	ChannelFile Channel = "file"
)

// Source describes where a batch comes from. Its identity is its content (the digest of its
// rows, see RowDigest): the same rows load once, whatever the key or the bytes that carry them. Key, when set, is the
// delivery's own identity (an S3 object version, an Idempotency-Key): a second load with the
// same Key replays the first outcome, and fails with a *KeyConflictError if the content differs.
type Source struct {
	Channel Channel
	// Key identifies the delivery, unique across channels (see the constructors); empty for a
	// file, which has no identity but its content.
	Key string
	// Name tells people where the batch came from: an s3:// URL, a path, a client address.
	Name string
	// Gzip says the content was declared gzip-encoded (S3 or HTTP Content-Encoding). Gzip data
	// is recognised by its magic bytes either way; the declaration only makes plain data an error.
	Gzip bool
	// Data is what the batch holds (prices by default).
	Data DataKind
	// Mode is how a price batch is applied (append by default).
	Mode Mode
	// ReceivedAt is when the content arrived (S3 event time, upload start); the loader
	// observes the time from it to the commit as rates_ingest_lag_seconds. Zero: not observed.
	ReceivedAt time.Time
}

// DataKind is what a batch holds.
type DataKind string

// The kinds of batch: prices (orig_code,dest_code,day,price), ports (code,name,parent_slug),
// regions (slug,name,parent_slug).
const (
	DataPrices  DataKind = "prices"
	DataPorts   DataKind = "ports"
	DataRegions DataKind = "regions"
)

// ParseDataKind accepts prices, ports or regions ("" means prices).
func ParseDataKind(s string) (DataKind, error) {
	switch k := DataKind(s); k {
	case "":
		return DataPrices, nil
	case DataPrices, DataPorts, DataRegions:
		return k, nil
	}
	return "", fmt.Errorf("unknown batch kind %s: expected prices, ports or regions", csvbatch.Quote(s))
}

// Mode is how a price batch is applied: append adds its prices; replace first takes out every
// price on each (orig_code, dest_code, day) the batch mentions.
type Mode string

// The modes of a price batch.
const (
	ModeAppend  Mode = "append"
	ModeReplace Mode = "replace"
)

// ParseMode accepts append or replace ("" means append).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeAppend, nil
	case ModeAppend, ModeReplace:
		return m, nil
	}
	return "", fmt.Errorf("unknown batch mode %s: expected append or replace", csvbatch.Quote(s))
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
	return Source{Channel: ChannelS3, Key: id, Name: u}
}

// APISource identifies a POST /batches request by its Idempotency-Key.
func APISource(idempotencyKey, name string) Source {
	return Source{Channel: ChannelAPI, Key: "api:" + idempotencyKey, Name: name}
}

// FileSource is a local file: its content is its only identity.
func FileSource(path string) Source {
	return Source{Channel: ChannelFile, Name: path}
}

func (s Source) validate() error {
	switch {
	case s.Channel != ChannelS3 && s.Channel != ChannelAPI && s.Channel != ChannelFile:
		return fmt.Errorf("unknown source channel %q", s.Channel)
	case s.Key == "" && s.Channel != ChannelFile:
		return errors.New("source has no key")
	case s.Data != DataPrices && s.Data != DataPorts && s.Data != DataRegions:
		return fmt.Errorf("unknown batch kind %q", s.Data)
	case s.Mode != ModeAppend && s.Mode != ModeReplace:
		return fmt.Errorf("unknown batch mode %q", s.Mode)
	case s.Mode == ModeReplace && s.Data != DataPrices:
		return fmt.Errorf("mode replace applies to price batches only, not %s", s.Data)
	case len(s.Key) > maxKeyLength:
		return fmt.Errorf("source key is longer than %d bytes", maxKeyLength)
	}
	return nil
}

// SourceError is a failure to read the batch itself (the client went away, the body was too
// large, the S3 stream broke), as opposed to a database failure or bad data.
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return "read batch: " + e.Err.Error() }

// HTTPStatus is 400: the request's body could not be read.
func (*SourceError) HTTPStatus() int { return http.StatusBadRequest }
func (e *SourceError) Unwrap() error { return e.Err }
