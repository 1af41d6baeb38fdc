/*
 * fs_errno.c — the one place where an engine error becomes an errno.
 *
 * Every operation of fs/ that fails because the engine refused passes the
 * ENG_E_* code through fs_errno(); docs/reference.md §8 restates this table.
 */
#include "fs_int.h"

#include <errno.h>

int fs_errno(int eng_err)
{
	switch (eng_err) {
	case ENG_OK:
		return 0;
	case ENG_E_INVAL:
		return EINVAL;
	case ENG_E_NOMEM:
		return ENOMEM;
	case ENG_E_TOO_LARGE:
		return EFBIG;
	case ENG_E_NOSPACE:
		return ENOSPC;
	case ENG_E_READ_ONLY:
		return EROFS;
	case ENG_E_COMPACTED:
		return ENODATA; /* the version is gone: "No data available" */
	case ENG_E_FUTURE_REV:
		return ENOENT; /* no such version (yet) */
	case ENG_E_LEASE_NOT_FOUND:
		return ENOENT;
	case ENG_E_LEASE_EXISTS:
		return EEXIST;
	case ENG_E_TOO_MANY_OPS:
		return EXDEV; /* a move too big for one txn: let mv copy */
	case ENG_E_DUP_KEY:
		return EINVAL;
	case ENG_E_TTL:
		return EINVAL;
	case ENG_E_AGAIN:
		return EAGAIN;
	case ENG_E_TIMEOUT:
		return ETIMEDOUT;
	case ENG_E_NOT_SUPPORTED:
		return ENOTSUP;
	case ENG_E_UNAVAILABLE:
	case ENG_E_CLOSED:
	case ENG_E_IO:
	case ENG_E_CORRUPT:
	case ENG_E_NOT_STORE:
	case ENG_E_LOCKED:
	case ENG_E_VERSION:
	case ENG_E_INTERNAL:
	default:
		return EIO;
	}
}
