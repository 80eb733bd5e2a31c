package copystream

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func chunks(parts []string, end error) Next {
	i := 0
	buf := make([]byte, 0, 16)
	return func() ([]byte, error) {
		if i == len(parts) {
			return nil, end
		}
		// Reuse one buffer, as the producers do, so a Reader that kept a reference would fail.
		buf = append(buf[:0], parts[i]...)
		i++
		return buf, nil
	}
}

func TestReader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts []string
	}{
		{"empty", nil},
		{"one row", []string{"a\tb\n"}},
		{"empty chunks between rows", []string{"", "1\n", "", "", "22\n", "333\n", ""}},
		{"rows longer than the reads", []string{strings.Repeat("x", 100) + "\n", "y\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := strings.Join(tc.parts, "")
			if err := iotest.TestReader(NewReader(chunks(tc.parts, io.EOF)), []byte(want)); err != nil {
				t.Fatal(err)
			}
			r := NewReader(chunks(tc.parts, io.EOF))
			got, err := io.ReadAll(iotest.OneByteReader(r))
			if err != nil || string(got) != want || r.Err() != nil {
				t.Fatalf("ReadAll = %q, %v (Err %v); want %q", got, err, r.Err(), want)
			}
		})
	}
}

func TestReaderStopsAtError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(chunks([]string{"1\n", "2\n"}, boom))
	got, err := io.ReadAll(r)
	if !errors.Is(err, boom) || string(got) != "1\n2\n" || !errors.Is(r.Err(), boom) {
		t.Fatalf("ReadAll = %q, %v (Err %v); want the rows, then boom", got, err, r.Err())
	}
	if n, err := r.Read(make([]byte, 4)); n != 0 || !errors.Is(err, boom) {
		t.Fatalf("Read after the error = %d, %v; want 0, boom", n, err)
	}
}
