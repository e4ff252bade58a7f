/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A client connection on a worker: the socket, TLS when it came in on an HTTPS
 * listener, and the buffered plaintext I/O the protocol handlers (h1-server.c,
 * h2-server.c) use. conn.c accepts, runs the TLS handshake, picks the protocol (ALPN
 * "h2" → HTTP/2; cleartext starting with the HTTP/2 preface → h2c prior knowledge; else
 * HTTP/1.1) and attaches the handler. All calls on the worker's loop thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct Conn Conn;
typedef struct Worker Worker;

typedef struct ConnProtocol {
	/* Plaintext from the client. Everything is taken; a handler that cannot take more
	 * calls conn_pause_read() and buffers what it got. */
	void (*data)(void *proto, const uint8_t *p, size_t n);
	/* The client closed its sending side (or TLS close_notify). */
	void (*eof)(void *proto);
	/* The output buffer went below its low-water mark after conn_write_full() was true. */
	void (*writable)(void *proto);
	/* The connection is going away (closed, reset, error, worker shutdown): free the
	 * handler's state. No conn_* call on this Conn afterwards. Called exactly once. */
	void (*closed)(void *proto);
	/* Optional. The worker is stopping (SIGTERM): accept no new requests (h2: GOAWAY),
	 * finish those in flight, then conn_close(). Connections still open 5 s later are
	 * aborted; a handler without this op is left alone until then. */
	void (*shutdown)(void *proto);
} ConnProtocol;

/* Queue plaintext to the client (encrypted and sent as the socket allows). Always takes
 * the bytes; returns 0, or -errno when the connection is already dead. */
int conn_write(Conn *c, const void *p, size_t n);
/* Output buffered beyond the high-water mark (default 256 KiB): stop producing until
 * ConnProtocol.writable. */
bool conn_write_full(const Conn *c);
size_t conn_write_pending(const Conn *c);
void conn_pause_read(Conn *c);
void conn_resume_read(Conn *c);
/* Send what is queued, then close (TLS close_notify first). */
void conn_close(Conn *c);
/* Close now, dropping queued output (RST). */
void conn_abort(Conn *c);
/* (Re)arm the idle timer: close the connection after `ms` without activity; 0 = off. */
void conn_set_idle_timeout(Conn *c, uint64_t ms);
/* A one-shot deadline independent of activity (the request head's, against slowloris):
 * after `ms` call cb(proto); 0 = cancel. One per connection; setting it replaces it. */
void conn_set_deadline(Conn *c, uint64_t ms, void (*cb)(void *proto));

Worker *conn_worker(Conn *c);
const struct sockaddr *conn_peer(const Conn *c, socklen_t *len);
bool conn_is_tls(const Conn *c);
/* The TLS SNI name (lower case) or NULL. */
const char *conn_sni(const Conn *c);

/* Protocol handlers' constructors, called by conn.c with the bytes already read. */
int h1_server_attach(Conn *c, const uint8_t *initial, size_t n, void **proto,
		     const ConnProtocol **ops);
int h2_server_attach(Conn *c, const uint8_t *initial, size_t n, void **proto,
		     const ConnProtocol **ops);
