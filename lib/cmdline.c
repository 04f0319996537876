/* cmdline.c - strict command-line option parser (see cmdline.h). */
#include "lib/cmdline.h"
#include "lib/format.h"
#include "lib/string.h"

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int parse_uint(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;
	size_t i = 0;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, i = 2;
	if (i == len)
		return -1;
	for (; i < len; i++) {
		unsigned d;
		char c = s[i];
		if (c >= '0' && c <= '9') d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
		else return -1;
		if (v > (UINT64_MAX - d) / base)
			return -1; /* overflow */
		v = v * base + d;
	}
	*out = v;
	return 0;
}

int parse_size(const char *s, size_t len, uint64_t *out)
{
	unsigned shift = 0;
	if (len > 0) {
		switch (s[len - 1]) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		}
		/* "0x1G" would be ambiguous with hex digits only for b..f; G/K/M are not hex. */
		if (shift)
			len--;
	}
	uint64_t v;
	if (parse_uint(s, len, &v))
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

static int set_option(const struct opt_desc *o, const char *val, size_t vlen, bool has_val, char *err,
		      size_t errlen)
{
	switch (o->type) {
	case OPT_FLAG: {
		bool v;
		if (!has_val) v = true;
		else if ((vlen == 2 && !strncmp(val, "on", 2)) || (vlen == 3 && !strncmp(val, "yes", 3)) ||
			 (vlen == 1 && val[0] == '1'))
			v = true;
		else if ((vlen == 3 && !strncmp(val, "off", 3)) || (vlen == 2 && !strncmp(val, "no", 2)) ||
			 (vlen == 1 && val[0] == '0'))
			v = false;
		else {
			ksnprintf(err, errlen, "option '%s' takes on/off, got '%.*s'", o->name, (int)vlen, val);
			return -1;
		}
		*(bool *)o->dest = v;
		return 0;
	}
	case OPT_UINT:
	case OPT_SIZE: {
		uint64_t v;
		if (!has_val || vlen == 0) {
			ksnprintf(err, errlen, "option '%s' needs a value", o->name);
			return -1;
		}
		int r = o->type == OPT_SIZE ? parse_size(val, vlen, &v) : parse_uint(val, vlen, &v);
		if (r) {
			ksnprintf(err, errlen, "option '%s' expects %s, got '%.*s'", o->name,
				  o->type == OPT_SIZE ? "a size such as 4096, 0x1000, 64K, 16M or 1G" : "a number",
				  (int)vlen, val);
			return -1;
		}
		if (v < o->min || v > o->max) {
			ksnprintf(err, errlen, "option '%s'=%.*s is out of range [%llu, %llu]", o->name, (int)vlen, val,
				  (unsigned long long)o->min, (unsigned long long)o->max);
			return -1;
		}
		*(uint64_t *)o->dest = v;
		return 0;
	}
	case OPT_SET: {
		/* "a,b,c": each a choice, at most once; "none": the empty set. */
		unsigned mask = 0;
		if (has_val && !(vlen == 4 && !strncmp(val, "none", 4))) {
			for (size_t i = 0; i <= vlen;) {
				size_t j = i;
				while (j < vlen && val[j] != ',')
					j++;
				unsigned k = 0;
				while (o->choices[k] && !(strlen(o->choices[k]) == j - i && !strncmp(o->choices[k], val + i, j - i)))
					k++;
				if (!o->choices[k] || k >= 32 || (mask & (1u << k)))
					goto set_error;
				mask |= 1u << k;
				i = j + 1;
			}
		} else if (!has_val) {
			goto set_error;
		}
		*(unsigned *)o->dest = mask;
		return 0;
	set_error: {
		int n = ksnprintf(err, errlen, "option '%s' takes none or a comma-separated list of", o->name);
		for (unsigned i = 0; o->choices[i] && (size_t)n < errlen; i++)
			n += ksnprintf(err + n, errlen - n, "%s%s", i ? "," : " ", o->choices[i]);
		if ((size_t)n < errlen)
			ksnprintf(err + n, errlen - n, " (each once), got '%.*s'", (int)vlen, has_val ? val : "");
		return -1;
	}
	}
	case OPT_CHOICE:
		if (has_val) {
			for (unsigned i = 0; o->choices[i]; i++) {
				if (strlen(o->choices[i]) == vlen && !strncmp(o->choices[i], val, vlen)) {
					*(unsigned *)o->dest = i;
					return 0;
				}
			}
		}
		{
			int n = ksnprintf(err, errlen, "option '%s' must be one of", o->name);
			for (unsigned i = 0; o->choices[i] && (size_t)n < errlen; i++)
				n += ksnprintf(err + n, errlen - n, "%s%s", i ? "|" : " ", o->choices[i]);
			if ((size_t)n < errlen)
				ksnprintf(err + n, errlen - n, ", got '%.*s'", (int)vlen, has_val ? val : "");
		}
		return -1;
	case OPT_STRING:
		if (!has_val || vlen + 1 > o->max) {
			ksnprintf(err, errlen, "option '%s' needs a value of at most %llu characters", o->name,
				  (unsigned long long)(o->max ? o->max - 1 : 0));
			return -1;
		}
		memcpy(o->dest, val, vlen);
		((char *)o->dest)[vlen] = '\0';
		return 0;
	}
	ksnprintf(err, errlen, "option '%s' has an unknown type", o->name);
	return -1;
}

int cmdline_parse(const char *cmdline, const struct opt_desc *opts, size_t nopts, char *err, size_t errlen)
{
	const char *p = cmdline ? cmdline : "";
	for (;;) {
		while (is_space(*p))
			p++;
		if (!*p)
			return 0;
		const char *tok = p;
		while (*p && !is_space(*p))
			p++;
		size_t tlen = p - tok;
		const char *eq = tok;
		while (eq < p && *eq != '=')
			eq++;
		size_t nlen = eq - tok;
		bool has_val = eq < p;
		const char *val = has_val ? eq + 1 : p;
		size_t vlen = has_val ? (size_t)(p - val) : 0;
		const struct opt_desc *o = NULL;
		for (size_t i = 0; i < nopts; i++)
			if (strlen(opts[i].name) == nlen && !strncmp(opts[i].name, tok, nlen))
				o = &opts[i];
		if (!o) {
			ksnprintf(err, errlen, "unknown option '%.*s'", (int)tlen, tok);
			return -1;
		}
		if (set_option(o, val, vlen, has_val, err, errlen))
			return -1;
	}
}
