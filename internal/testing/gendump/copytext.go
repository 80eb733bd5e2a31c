package gendump

// nullField is how COPY text format writes NULL.
const nullField = `\N`

// appendCopyText appends s as one field of COPY text format, escaped the way pg_dump escapes
// it: a backslash, the field delimiter (tab), the line ends and the other control characters
// that have a backslash escape. Other bytes, UTF-8 included, are written as they are.
func appendCopyText(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		var esc byte
		switch c {
		case '\\':
			esc = '\\'
		case '\t':
			esc = 't'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case '\b':
			esc = 'b'
		case '\f':
			esc = 'f'
		case '\v':
			esc = 'v'
		default:
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '\\', esc)
	}
	return dst
}
