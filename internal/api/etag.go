package api

import (
	"crypto/sha256"
	"encoding/base64"
)

// etagOf is the strong validator of an answer body: the first 128 bits of its SHA-256, so it
// changes exactly when the bytes do, and every instance computes the same tag for the same
// answer (a cache in front may revalidate with any of them).
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	b := make([]byte, 0, 24)
	b = append(b, '"')
	b = base64.RawURLEncoding.AppendEncode(b, sum[:16])
	return string(append(b, '"'))
}

// etagMatches reports whether an If-None-Match field (its lines) names etag, by the weak
// comparison RFC 9110 13.1.2 asks for: "*", or a listed tag with the same opaque part, W/ or
// not. A list it cannot read matches nothing, so the full answer is sent.
func etagMatches(fields []string, etag string) bool {
	for _, f := range fields {
		for i := 0; i < len(f); {
			switch c := f[i]; {
			case c == ' ' || c == '\t' || c == ',':
				i++
				continue
			case c == '*':
				return true
			case c == 'W' && i+1 < len(f) && f[i+1] == '/':
				i += 2
			}
			if i >= len(f) || f[i] != '"' {
				return false
			}
			end := i + 1
			for end < len(f) && f[end] != '"' {
				end++
			}
			if end == len(f) {
				return false
			}
			if f[i:end+1] == etag {
				return true
			}
			i = end + 1
		}
	}
	return false
}
