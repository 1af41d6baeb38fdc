/*
 * snapshot_int.h — private to engine/: the snapshot format's encoders,
 * shared by snapshot_fmt.c (the format) and local_snapshot.c (the writer).
 */
#ifndef REVFS_SNAPSHOT_INT_H
#define REVFS_SNAPSHOT_INT_H

#include "snapshot.h"

/* ENG_SNAPSHOT_HDR_LEN bytes, with the header's own CRC32C. */
void snapshot_encode_header(const struct eng_snapshot_info *h, char *out);
/* ENG_SNAPSHOT_TRL_LEN bytes. */
void snapshot_encode_trailer(uint64_t records, uint32_t crc, char *out);
/* The 8 bytes before a record (klen 0: the end of the body). */
void snapshot_encode_lens(uint32_t klen, uint32_t vlen, char *out);

#endif /* REVFS_SNAPSHOT_INT_H */
