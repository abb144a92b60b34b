package check

// fillPayload fills b with keepalived's filler text, what it sends when
// a UDP_CHECK has no payload and as a PING_CHECK's echo data.
func fillPayload(b []byte) []byte {
	const s = "keepalived check - "
	for i := range b {
		b[i] = s[i%len(s)]
	}
	return b
}
