// Package check runs one health check of a real server: the checkers of
// keepalived.conf(5) (TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, DNS_CHECK,
// SMTP_CHECK, PING_CHECK, MISC_CHECK, FILE_CHECK) with keepalived's
// options and meaning. A Checker does one check per call and keeps no
// schedule: retries, delay_loop, warmup and what a result does to the
// server belong to package health.
package check

import (
	"context"
	"net/netip"
	"time"
)

// Kind is a checker's keepalived keyword.
type Kind string

// The checkers.
const (
	TCP  Kind = "TCP_CHECK"
	HTTP Kind = "HTTP_GET"
	SSL  Kind = "SSL_GET"
	UDP  Kind = "UDP_CHECK"
	DNS  Kind = "DNS_CHECK"
	SMTP Kind = "SMTP_CHECK"
	Ping Kind = "PING_CHECK"
	Misc Kind = "MISC_CHECK"
	File Kind = "FILE_CHECK"
)

// Kinds lists every checker kind.
var Kinds = []Kind{TCP, HTTP, SSL, UDP, DNS, SMTP, Ping, Misc, File}

// Spec is one checker as configured, with the defaults of its virtual
// and real server already applied by the config reader (keepalived: the
// virtual server's setting is the real server's default, the real
// server's the checker's). Zero values mean "keepalived's default";
// Defaults fills them in.
type Spec struct {
	Kind Kind `json:"kind"`

	// Where the check goes; zero: the real server's address / port.
	ConnectIP   netip.Addr `json:"connect_ip,omitzero"`
	ConnectPort uint16     `json:"connect_port,omitempty"`
	// Where it comes from; zero: the kernel's choice.
	BindTo   netip.Addr `json:"bindto,omitzero"`
	BindPort uint16     `json:"bind_port,omitempty"`
	BindIf   string     `json:"bind_if,omitempty"`
	// FWMark marks the checker's packets (SO_MARK).
	FWMark uint32 `json:"fwmark,omitempty"`
	// ViaVIP (a gvs extension, keepalived has no such option) checks a
	// DR or TUN server through its service's VIP as the server sees it:
	// destination VIP:port (ConnectPort, else the service's port). The
	// checker still connects to the server's address; package health
	// sets FWMark to a mark that the director's forwarding (package
	// hcfwd) turns into that. TCP-based checkers, UDP and DNS only.
	ViaVIP bool `json:"via_vip,omitempty"`

	// ConnectTimeout bounds one check (default 5 s).
	ConnectTimeout time.Duration `json:"connect_timeout,omitempty"`
	// Retry is how many more checks a failure of an up server takes
	// before it is declared down; nil: the kind's default (3 for
	// DNS_CHECK, 0 for MISC_CHECK, 1 otherwise).
	Retry *int `json:"retry,omitempty"`
	// DelayBeforeRetry: default delay_loop for DNS_CHECK, 3 s for HTTP_GET
	// and SSL_GET, 1 s otherwise.
	DelayBeforeRetry time.Duration `json:"delay_before_retry,omitempty"`
	// DelayLoop is the interval between checks (default 60 s).
	DelayLoop time.Duration `json:"delay_loop,omitempty"`
	// Warmup is the bound of the random delay before the first check;
	// nil: delay_loop; 0: none.
	Warmup *time.Duration `json:"warmup,omitempty"`
	// Alpha: the server starts down until this checker first succeeds.
	Alpha          bool `json:"alpha,omitempty"`
	LogAllFailures bool `json:"log_all_failures,omitempty"`

	HTTP HTTPSpec `json:"http,omitzero"` // HTTP_GET, SSL_GET
	UDP  UDPSpec  `json:"udp,omitzero"`
	DNS  DNSSpec  `json:"dns,omitzero"`
	SMTP SMTPSpec `json:"smtp,omitzero"`
	Misc MiscSpec `json:"misc,omitzero"`
	File FileSpec `json:"file,omitzero"`
}

// HTTPSpec is HTTP_GET's and SSL_GET's options.
type HTTPSpec struct {
	// Protocol is "1.0" (default), "1.0C" (1.0 with Connection: close)
	// or "1.1".
	Protocol    string `json:"http_protocol,omitempty"`
	VirtualHost string `json:"virtualhost,omitempty"` // the Host header; default: the target address
	URLs        []URL  `json:"urls,omitempty"`
	// FastRecovery checks every URL at once when recovering, instead of
	// one per delay_loop.
	FastRecovery bool `json:"fast_recovery,omitempty"`
	// SSL_GET: send SNI (SNIName, else VirtualHost), and close with
	// close_notify.
	EnableSNI    bool   `json:"enable_sni,omitempty"`
	SNIName      string `json:"sni_name,omitempty"`
	TLSCompliant bool   `json:"tls_compliant,omitempty"`
}

// URL is one url block: the check passes when every URL does.
type URL struct {
	Path string `json:"path"`
	// Digest is the MD5 of the body in hex, as keepalived's genhash
	// prints it; empty: not checked.
	Digest string `json:"digest,omitempty"`
	// StatusCodes are ranges; none: 200-299.
	StatusCodes  []StatusRange `json:"status_code,omitempty"`
	VirtualHost  string        `json:"virtualhost,omitempty"` // overrides HTTPSpec's
	Regex        string        `json:"regex,omitempty"`       // RE2 syntax
	RegexNoMatch bool          `json:"regex_no_match,omitempty"`
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// UDPSpec is UDP_CHECK's options.
type UDPSpec struct {
	Payload []byte `json:"payload,omitempty"` // nil: random bytes
	// RequireReply: a reply must come; ReplyPattern (if any) must match
	// its start, with ReplyMask's zero bits ignored (keepalived's X
	// nibbles).
	RequireReply bool   `json:"require_reply,omitempty"`
	ReplyPattern []byte `json:"reply_pattern,omitempty"`
	ReplyMask    []byte `json:"reply_mask,omitempty"`
	MinReplyLen  int    `json:"min_reply_length,omitempty"` // default 0
	MaxReplyLen  int    `json:"max_reply_length,omitempty"` // default 255
}

// DNSSpec is DNS_CHECK's options.
type DNSSpec struct {
	Type string `json:"type,omitempty"` // A NS CNAME SOA MX TXT AAAA; default SOA
	Name string `json:"name,omitempty"` // default "."
}

// SMTPSpec is SMTP_CHECK's options.
type SMTPSpec struct {
	HeloName string `json:"helo_name,omitempty"` // default: keepalived's, DefaultHeloName
}

// MiscSpec is MISC_CHECK's options.
type MiscSpec struct {
	Path    string        `json:"misc_path"` // a command line, run without a shell
	Timeout time.Duration `json:"misc_timeout,omitempty"`
	// Dynamic: exit status 2-255 means up with the weight set to status-2.
	Dynamic bool   `json:"misc_dynamic,omitempty"`
	User    string `json:"user,omitempty"`
	Group   string `json:"group,omitempty"`
}

// FileSpec is FILE_CHECK's options, with its track_file resolved.
type FileSpec struct {
	Name    string `json:"track_file"` // the track_file block's name
	Path    string `json:"file"`       // the file it watches
	Weight  int64  `json:"weight"`     // multiplier of the number in the file (default 1)
	Reverse bool   `json:"reverse,omitempty"`
	// Dynamic: the product is added to the server's weight; otherwise a
	// product at or below keepalived's IPVS_WEIGHT_FAULT (INT32_MIN) is a
	// failure and anything else success.
	Dynamic bool `json:"dynamic,omitempty"`
}

// Target is one server as a checker sees it.
type Target struct {
	// Server is the real server's address and port.
	Server netip.AddrPort
	// VIP is its service's virtual address and port (for the log).
	VIP netip.AddrPort
}

// Result is the outcome of one check.
type Result struct {
	Up bool
	// Reason says why a check failed ("connection refused", "status
	// 503", "timeout after 5s", ...), or what succeeded, for the log.
	Reason string
	// Weight, when set, is what a dynamic checker asks of the server's
	// weight while it is up: MISC_CHECK misc_dynamic the weight itself
	// (exit status - 2); FILE_CHECK dynamic an amount to add to the
	// configured weight (the file's number times the weight multiplier).
	// Package health turns both into the effective weight.
	Weight *int64
}

// Checker does one check.
type Checker interface {
	// Check checks once and returns within the spec's connect_timeout
	// (misc_timeout for MISC_CHECK), or when ctx ends.
	Check(ctx context.Context) Result
}
