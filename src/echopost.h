/*
 * echopost.h: names and limits shared by every module of echopost.
 *
 * The file names under DIR are fixed by the SDK and the contract; keep them
 * here so that no module spells them on its own.
 */
#ifndef ECHOPOST_H
#define ECHOPOST_H

#define SOCKET_NAME		"data-nadhi-agent.sock"
#define SOCKET_ANCHOR_NAME	".agent.sock"
#define STATUS_LOCK_NAME	"agent-status.lock"
#define PID_FILE_NAME		"echopost.pid"
#define SPOOL_NAME		"echopost.spool"
#define QUARANTINE_NAME		"echopost-quarantine.jsonl"
#define SESSION_PREFIX		"session-"
#define SUCCESS_LOG_NAME	"agent-success.log"
#define FAILURE_LOG_NAME	"agent-failure.log"
#define EVENT_LOG_NAME		"agent.log"

#define SENDLOG_METHOD		"/logagent.LogAgent/SendLog"

/* sizeof(((struct sockaddr_un *)0)->sun_path) - 1 on Linux. */
#define SOCKET_PATH_MAX		107

/* sysexits(3) codes, spelled out so that no platform header is needed. */
#define EXIT_USAGE		64
#define EXIT_DATAERR		65
#define EXIT_NOINPUT		66
#define EXIT_SOFTWARE		70
#define EXIT_CANTCREATE		73
#define EXIT_IOERROR		74
#define EXIT_TEMPFAIL		75
#define EXIT_NOPERM		77

#endif
