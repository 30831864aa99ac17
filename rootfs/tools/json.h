/* SPDX-License-Identifier: GPL-2.0 */
/* Minimal JSON emitter for the guest tools (one object per run, on stdout). */
#ifndef REMAPLAB_JSON_H
#define REMAPLAB_JSON_H

#include <stdio.h>

static int json_first = 1;

static inline void json_sep(void)
{
	if (!json_first)
		fputc(',', stdout);
	json_first = 0;
}

static inline void json_open(const char *key, char bracket)
{
	json_sep();
	if (key)
		printf("\"%s\":", key);
	fputc(bracket, stdout);
	json_first = 1;
}

static inline void json_close(char bracket)
{
	fputc(bracket, stdout);
	json_first = 0;
}

static inline void json_str(const char *key, const char *val)
{
	const char *p;

	json_sep();
	if (key)
		printf("\"%s\":", key);
	fputc('"', stdout);
	for (p = val; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", *p);
		else
			fputc(*p, stdout);
	}
	fputc('"', stdout);
}

static inline void json_u64(const char *key, unsigned long long val)
{
	json_sep();
	if (key)
		printf("\"%s\":", key);
	printf("%llu", val);
}

static inline void json_i64(const char *key, long long val)
{
	json_sep();
	if (key)
		printf("\"%s\":", key);
	printf("%lld", val);
}

static inline void json_bool(const char *key, int val)
{
	json_sep();
	if (key)
		printf("\"%s\":", key);
	fputs(val ? "true" : "false", stdout);
}

static inline void json_null(const char *key)
{
	json_sep();
	if (key)
		printf("\"%s\":", key);
	fputs("null", stdout);
}

#endif
