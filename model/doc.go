// Package model states the IPVS object model once for the whole project:
// virtual services, their destinations (real servers), forwarding methods,
// flags, limits and the validation rules of the kernel and of ipvsadm.
//
// It is pure Go with no I/O. Schedulers (package sched), connection states
// (package conn) and a whole IPVS instance (package ipvs) build on it; the
// engines and the control plane use it as the single definition of what a
// rule means.
package model
