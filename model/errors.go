package model

import (
	"fmt"
	"syscall"
)

// Error is a rejected operation. Msg is the message ipvsadm prints for the
// same mistake, so gvsadm can print it unchanged.
type Error struct {
	// Errno is the kernel's error number for the failure (EEXIST, ESRCH,
	// ENOENT, EINVAL, ERANGE, ...), or 0 for a mistake ipvsadm itself
	// catches before asking the kernel.
	Errno syscall.Errno
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

// Is matches errors with the same errno and message, so callers can use
// errors.Is(err, model.ErrNoSuchService).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Errno == e.Errno && t.Msg == e.Msg
}

// ExitCode is the status ipvsadm exits with for this error: 2 for a
// command-line mistake it catches itself, 255 when the kernel refuses
// (process_options returns -1 and main returns it).
func (e *Error) ExitCode() int {
	if e.Errno == 0 {
		return 2
	}
	return 255
}

// Usage returns an error ipvsadm reports itself (exit status 2).
func Usage(msg string) *Error { return &Error{Msg: msg} }

// The kernel's refusals, with ipvsadm's words for them (libipvs 1.31 ipvs_strerror).
var (
	ErrServiceExists     = &Error{syscall.EEXIST, "Service already exists"}
	ErrSchedulerNotFound = &Error{syscall.ENOENT, "Scheduler or persistence engine not found"}
	ErrNoSuchService     = &Error{syscall.ESRCH, "No such service"}
	ErrServiceNotDefined = &Error{syscall.ESRCH, "Service not defined"}
	ErrDestExists        = &Error{syscall.EEXIST, "Destination already exists"}
	ErrNoSuchDest        = &Error{syscall.ENOENT, "No such destination"}
	ErrInvalid           = &Error{syscall.EINVAL, "Invalid operation.  Possibly wrong module version, address not unicast, ..."}
	ErrRange             = &Error{syscall.ERANGE, "Numerical result out of range"}
	ErrAFNotSupported    = &Error{syscall.EAFNOSUPPORT, "Operation not supported with specified address family"}
	ErrNoMemory          = &Error{syscall.ENOMEM, "Memory allocation problem"}
	ErrProtoNotAvailable = &Error{syscall.ENOPROTOOPT, "Protocol not available"}
)

// The refusals of the FULLNAT local address commands (-P, -Q), with DPVS
// ipvsadm's words where it has them (libipvs ipvs_strerror); an unknown
// service is ErrServiceNotDefined there too, a bad address ErrInvalid.
var (
	ErrLocalAddrExists   = &Error{syscall.EEXIST, "Local address already exists"}
	ErrNoSuchLocalAddr   = &Error{syscall.ENOENT, "No such Local address"}
	ErrTooManyLocalAddrs = &Error{syscall.ENOSPC, fmt.Sprintf("Too many local addresses (a service has at most %d)", MaxLocalAddrs)}
)

// The refusals of a service's source allow list (gvs's own: ipvsadm has
// none). Entries are named by the caller (NormalizeAllow wraps them).
var (
	ErrAllowInvalid  = &Error{syscall.EINVAL, "Invalid allow list entry (want an address or prefix of the service's family)"}
	ErrAllowExists   = &Error{syscall.EEXIST, "Allow list entry given twice"}
	ErrTooManyAllows = &Error{syscall.ENOSPC, fmt.Sprintf("Too many allow list entries (a service has at most %d)", MaxAllow)}
)
