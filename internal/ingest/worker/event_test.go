package worker

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"rates/internal/ingest"
)

// record builds one S3 event record as S3 writes it.
func record(event, bucket, key, version, etag string, size int) string {
	v := ""
	if version != "" {
		v = `,"versionId":"` + version + `"`
	}
	return `{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2024-05-01T10:00:00.000Z",
		"eventName":"` + event + `","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},
		"s3":{"s3SchemaVersion":"1.0","configurationId":"incoming","bucket":{"name":"` + bucket + `","arn":"arn:aws:s3:::` + bucket + `"},
		"object":{"key":"` + key + `","size":` + itoa(size) + `,"eTag":"` + etag + `"` + v + `,"sequencer":"0055AED6DCD90281E5"}}}`
}

func itoa(n int) string { return strconv.Itoa(n) }

func event(records ...string) string { return `{"Records":[` + strings.Join(records, ",") + `]}` }

func TestParseS3Event(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []ObjectRef
	}{
		{
			name: "one record",
			body: event(record("ObjectCreated:Put", "rates-ingest", "incoming/batch.csv", "v1", "abc", 7)),
			want: []ObjectRef{{Bucket: "rates-ingest", Key: "incoming/batch.csv", VersionID: "v1", ETag: "abc", Size: 7, EventName: "ObjectCreated:Put"}},
		},
		{
			name: "several records, in order",
			body: event(
				record("ObjectCreated:Put", "b", "incoming/a.csv", "", "e1", 1),
				record("ObjectCreated:CompleteMultipartUpload", "b", "incoming/b.csv.gz", "", "e2-3", 2),
			),
			want: []ObjectRef{
				{Bucket: "b", Key: "incoming/a.csv", ETag: "e1", Size: 1, EventName: "ObjectCreated:Put"},
				{Bucket: "b", Key: "incoming/b.csv.gz", ETag: "e2-3", Size: 2, EventName: "ObjectCreated:CompleteMultipartUpload"},
			},
		},
		{
			name: "form-encoded key: '+' is a space, %XX an escaped byte",
			body: event(record("ObjectCreated:Put", "b", "incoming/May+prices%2B%C3%A9t%C3%A9%3D1.csv", "", "e", 3)),
			want: []ObjectRef{{Bucket: "b", Key: "incoming/May prices+été=1.csv", ETag: "e", Size: 3, EventName: "ObjectCreated:Put"}},
		},
		{
			name: "test event",
			body: `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-05-01T10:00:00.000Z","Bucket":"b","RequestId":"R","HostId":"H"}`,
			want: nil,
		},
		{
			name: "other events skipped",
			body: event(
				record("ObjectRemoved:Delete", "b", "incoming/gone.csv", "", "", 0),
				record("ObjectCreated:Copy", "b", "incoming/kept.csv", "", "e", 4),
			),
			want: []ObjectRef{{Bucket: "b", Key: "incoming/kept.csv", ETag: "e", Size: 4, EventName: "ObjectCreated:Copy"}},
		},
		{
			name: "no records",
			body: `{"Records":[]}`,
			want: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseS3Event(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			// Every record of the fixture carries the same eventTime.
			for i := range tc.want {
				tc.want[i].EventTime = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseS3Event = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseS3EventErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":       "hello",
		"not an event":   `{"foo":1}`,
		"bad escape":     event(record("ObjectCreated:Put", "b", "incoming/%zz.csv", "", "e", 1)),
		"missing bucket": event(record("ObjectCreated:Put", "", "incoming/a.csv", "", "e", 1)),
	} {
		if refs, err := ParseS3Event(body); err == nil {
			t.Errorf("%s: ParseS3Event = %+v, want an error", name, refs)
		}
	}
}

func TestS3SourceIdentity(t *testing.T) {
	for _, tc := range []struct {
		ref  ObjectRef
		want string
	}{
		{ObjectRef{Bucket: "b", Key: "incoming/a b.csv", VersionID: "3/L4kqtJl+", ETag: "e"}, "s3://b/incoming/a b.csv?versionId=3%2FL4kqtJl%2B"},
		{ObjectRef{Bucket: "b", Key: "incoming/a.csv", VersionID: "null", ETag: `"e1"`}, "s3://b/incoming/a.csv?etag=e1"},
		{ObjectRef{Bucket: "b", Key: "incoming/a.csv", ETag: "e1"}, "s3://b/incoming/a.csv?etag=e1"},
	} {
		if got := tc.ref.Source(); got.Key != tc.want || got.Channel != ingest.ChannelS3 || got.Name != "s3://"+tc.ref.Bucket+"/"+tc.ref.Key {
			t.Errorf("ingest.Source(%+v) = %+v, want key %s", tc.ref, got, tc.want)
		}
	}
}

func TestRouteOf(t *testing.T) {
	for _, tc := range []struct {
		key  string
		kind ingest.DataKind
		mode ingest.Mode
	}{
		{"incoming/daily.csv", ingest.DataPrices, ingest.ModeAppend},
		{"incoming/2026/05/daily.csv", ingest.DataPrices, ingest.ModeAppend},
		{"incoming/replace/daily.csv", ingest.DataPrices, ingest.ModeReplace},
		{"incoming/replace/2026/daily.csv.gz", ingest.DataPrices, ingest.ModeReplace},
		{"incoming/ports/new.csv", ingest.DataPorts, ingest.ModeAppend},
		{"incoming/regions/new.csv", ingest.DataRegions, ingest.ModeAppend},
		{"incoming/replace", ingest.DataPrices, ingest.ModeAppend}, // a file named replace, not the folder
		{"incoming/Ports/x.csv", ingest.DataPrices, ingest.ModeAppend},
	} {
		if kind, mode := DataKindAndModeOf(tc.key); kind != tc.kind || mode != tc.mode {
			t.Errorf("DataKindAndModeOf(%q) = %s, %s; want %s, %s", tc.key, kind, mode, tc.kind, tc.mode)
		}
	}
}
