package model

import (
	"fmt"
	"strings"
)

// Protocols and methods travel by name in the API's JSON.

var protoNames = map[Protocol]string{ProtoNone: "", ProtoTCP: "tcp", ProtoUDP: "udp", ProtoSCTP: "sctp"}

// MarshalText writes "tcp", "udp", "sctp", or "" for no protocol (fwmark).
func (p Protocol) MarshalText() ([]byte, error) {
	if n, ok := protoNames[p]; ok {
		return []byte(n), nil
	}
	return nil, fmt.Errorf("unknown protocol %d", p)
}

// UnmarshalText reads what MarshalText writes.
func (p *Protocol) UnmarshalText(b []byte) error {
	for k, n := range protoNames {
		if n == strings.ToLower(string(b)) {
			*p = k
			return nil
		}
	}
	return fmt.Errorf("unknown protocol %q", b)
}

var methodNames = map[Method]string{Masq: "masq", Local: "local", Tunnel: "tunnel", Route: "route", FullNAT: "fullnat"}

// MarshalText writes "masq", "route", "tunnel", "fullnat" or "local".
func (m Method) MarshalText() ([]byte, error) {
	if n, ok := methodNames[m]; ok {
		return []byte(n), nil
	}
	return nil, fmt.Errorf("unknown forwarding method %d", m)
}

// UnmarshalText reads what MarshalText writes.
func (m *Method) UnmarshalText(b []byte) error {
	for k, n := range methodNames {
		if n == strings.ToLower(string(b)) {
			*m = k
			return nil
		}
	}
	return fmt.Errorf("unknown forwarding method %q", b)
}
