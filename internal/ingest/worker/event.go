package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"rates/internal/ingest"
)

// ObjectRef is one object that an S3 event notification reports as created.
type ObjectRef struct {
	Bucket    string
	Key       string // decoded
	VersionID string // empty for an unversioned bucket
	ETag      string
	Size      int64
	EventName string
	EventTime time.Time // when S3 accepted the object; zero if the event does not say
}

// s3Event is the notification S3 sends to SQS. S3 sends a test event, with no Records, when
// notifications are first configured.
type s3Event struct {
	Records []struct {
		EventSource string `json:"eventSource"`
		EventName   string `json:"eventName"`
		EventTime   string `json:"eventTime"`
		S3          struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key       string `json:"key"`
				Size      int64  `json:"size"`
				ETag      string `json:"eTag"`
				VersionID string `json:"versionId"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
	Event string `json:"Event"`
}

// ParseS3Event returns the objects created according to one SQS message body. A test event
// yields none, and so do records of other events (removals, restores), which need no load.
// An error means the body is not an S3 event notification at all.
func ParseS3Event(body string) ([]ObjectRef, error) {
	var ev s3Event
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return nil, fmt.Errorf("not an S3 event notification: %w", err)
	}
	if ev.Event == "s3:TestEvent" {
		return nil, nil
	}
	if ev.Records == nil {
		return nil, errors.New("not an S3 event notification: no Records")
	}
	var refs []ObjectRef
	for i, rec := range ev.Records {
		if rec.EventSource != "aws:s3" || !strings.HasPrefix(rec.EventName, "ObjectCreated:") {
			continue
		}
		// Keys arrive form-encoded: a space as '+', other special characters as %XX.
		key, err := url.QueryUnescape(rec.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("record %d: object key %q: %w", i, rec.S3.Object.Key, err)
		}
		if rec.S3.Bucket.Name == "" || key == "" {
			return nil, fmt.Errorf("record %d: no bucket or object key", i)
		}
		// S3 writes eventTime as ISO 8601 with milliseconds; a missing or odd one only costs the
		// lag metric its observation.
		eventTime, _ := time.Parse(time.RFC3339Nano, rec.EventTime)
		refs = append(refs, ObjectRef{
			EventTime: eventTime,
			Bucket:    rec.S3.Bucket.Name,
			Key:       key,
			VersionID: rec.S3.Object.VersionID,
			ETag:      rec.S3.Object.ETag,
			Size:      rec.S3.Object.Size,
			EventName: rec.EventName,
		})
	}
	return refs, nil
}

// Source is the batch identity of the object, with the kind and mode its key selects (see
// DataKindAndModeOf) and its event time.
func (o ObjectRef) Source() ingest.Source {
	src := ingest.S3Source(o.Bucket, o.Key, o.VersionID, o.ETag)
	src.Data, src.Mode = DataKindAndModeOf(o.Key)
	src.ReceivedAt = o.EventTime
	return src
}

// The folders right below the incoming prefix that hold multi-part batches: the parts, which
// are not batches of their own, and the manifests that load them.
const (
	PartsFolder     = "parts"
	ManifestsFolder = "manifests"
)

// folderOf returns the folder right below the incoming prefix that holds key, or "" for an
// object directly in it.
func folderOf(key string) string {
	parts := strings.Split(key, "/")
	if len(parts) < 3 {
		return ""
	}
	return parts[1]
}

// partsPrefixOf returns the parts folder beside the manifest at key: the parts of a multi-part
// batch sit below the same incoming prefix.
func partsPrefixOf(key string) string {
	return strings.SplitN(key, "/", 2)[0] + "/" + PartsFolder + "/"
}

// DataKindAndModeOf reads a batch's kind and mode from its object key: the folder right below the
// incoming prefix decides. incoming/replace/... is a price batch in replace mode,
// incoming/ports/... a ports batch, incoming/regions/... a regions batch; any other key
// (incoming/daily.csv, incoming/2026/...) a price batch in append mode. The one S3
// notification on the incoming prefix covers them all.
func DataKindAndModeOf(key string) (ingest.DataKind, ingest.Mode) {
	switch folderOf(key) {
	case "replace":
		return ingest.DataPrices, ingest.ModeReplace
	case "ports":
		return ingest.DataPorts, ingest.ModeAppend
	case "regions":
		return ingest.DataRegions, ingest.ModeAppend
	}
	return ingest.DataPrices, ingest.ModeAppend
}
