// Command backend is a demo real server: on TCP it greets each connection
// with its name and echoes what it receives; on UDP it answers each
// datagram with its name and the datagram.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8081", "address:port for TCP and UDP")
	name := flag.String("name", "backend", "name to answer with")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		buf := make([]byte, 64*1024)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte(*name+": "), buf[:n]...), from)
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			fmt.Fprintf(c, "hello from %s\n", *name)
			io.Copy(c, c)
		}()
	}
}
