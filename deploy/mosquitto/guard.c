/*
 * The broker's guard: what Mosquitto 2.0's access list cannot say.
 *
 * A Mosquitto 2.0 plugin (plugin API 5), asked before the access list on every access check:
 *
 *  - A device (any account outside the services' prefix) may subscribe to its own command topic
 *    and nothing else: every other filter is refused in the SUBACK (MQTT 5: 0x87 "not
 *    authorized"; MQTT 3.1.1: 0x80 "failure"). Mosquitto 2.0's access list grants every
 *    subscription and only filters what it delivers.
 *  - A device's publish with a payload over the contract's limit is refused before it is stored
 *    (MQTT 5 QoS 1: PUBACK 0x87, the connection stays up), and the broker publishes a refusal
 *    notice to the device's `refused` topic, which only the broker can write and the ingest
 *    reads: the ingest dead-letters and counts it. Mosquitto 2.0's own size limit would answer
 *    with 0x95, a code MQTT 5 allows in a DISCONNECT but not in a PUBACK, and clients drop the
 *    connection on it. A device's snapshot topic (camera stills) has a larger limit of its own.
 *
 * Everything else, and every service account, is left to the access list (the plugin defers).
 *
 * Options (plugin_opt_<name> in the broker's configuration):
 *   device_subscribe  the one filter a device may subscribe to; %u is its username
 *   refused_topic     where refusal notices go; %u is the device's username
 *   max_payload       the largest payload a device may publish, in bytes
 *   snapshot_topic    optional: a device's topic with a limit of its own; %u is its username
 *   snapshot_max_payload  that topic's limit, in bytes (with snapshot_topic)
 *   service_prefix    usernames starting with it are the platform's own services
 *
 * Build: gcc -shared -fPIC -O2 -o guard.so guard.c (headers: Mosquitto 2.0's development files).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define NOTICE_MAX 1024

static mosquitto_plugin_id_t *plugin_id = NULL;
static char *device_subscribe = NULL;
static char *refused_topic = NULL;
static char *service_prefix = NULL;
static unsigned long max_payload = 0;
static char *snapshot_topic = NULL;
static unsigned long snapshot_max_payload = 0;

/* The pattern with each %u replaced by the username; NULL when out of memory. */
static char *expand(const char *pattern, const char *username)
{
	size_t count = 0, ulen = strlen(username), plen = strlen(pattern);
	const char *p;
	for(p = strstr(pattern, "%u"); p; p = strstr(p + 2, "%u")) count++;
	char *out = mosquitto_malloc(plen + count * ulen + 1);
	if(!out) return NULL;
	char *o = out;
	for(p = pattern; *p; ){
		if(p[0] == '%' && p[1] == 'u'){
			memcpy(o, username, ulen);
			o += ulen;
			p += 2;
		}else{
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

/* The topic as a JSON string body (quotes, backslashes and control characters escaped), cut
 * short at a whole character rather than overflow (the broker has checked it is UTF-8). */
static void json_escape(const char *in, char *out, size_t size)
{
	size_t n = 0;
	while(*in){
		unsigned char c = (unsigned char)*in;
		size_t width = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		if(n + width + 7 >= size) break;
		if(c == '"' || c == '\\'){
			out[n++] = '\\';
			out[n++] = (char)c;
		}else if(c < 0x20){
			n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
		}else{
			size_t i = 0;
			for(; i < width && in[i]; i++) out[n++] = in[i];
			in += i;
			continue;
		}
		in++;
	}
	out[n] = '\0';
}

static int is_service(const char *username)
{
	return strncmp(username, service_prefix, strlen(service_prefix)) == 0;
}

static int check_subscribe(const char *username, const char *filter)
{
	char *own = expand(device_subscribe, username);
	if(!own) return MOSQ_ERR_NOMEM;
	int allowed = strcmp(filter, own) == 0;
	mosquitto_free(own);
	if(allowed) return MOSQ_ERR_PLUGIN_DEFER;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "guard: refused subscription to '%s' by %s", filter, username);
	return MOSQ_ERR_ACL_DENIED;
}

/* The payload limit of a device's publish to this topic: the snapshot topic's own, or the contract's. */
static unsigned long limit_for(const char *username, const char *topic)
{
	if(!snapshot_topic) return max_payload;
	char *own = expand(snapshot_topic, username);
	if(!own) return max_payload;
	int snapshot = strcmp(topic, own) == 0;
	mosquitto_free(own);
	return snapshot ? snapshot_max_payload : max_payload;
}

static int check_publish(const char *username, const char *topic, uint32_t payloadlen)
{
	/* most publishes are small: no topic to compare while neither limit is reached */
	if(payloadlen <= max_payload && (!snapshot_topic || payloadlen <= snapshot_max_payload)) return MOSQ_ERR_PLUGIN_DEFER;
	unsigned long limit = limit_for(username, topic);
	if(payloadlen <= limit) return MOSQ_ERR_PLUGIN_DEFER;
	char escaped[NOTICE_MAX / 2];
	char notice[NOTICE_MAX];
	json_escape(topic, escaped, sizeof(escaped));
	int len = snprintf(notice, sizeof(notice), "{\"topic\":\"%s\",\"bytes\":%lu,\"limit\":%lu}",
			escaped, (unsigned long)payloadlen, limit);
	char *to = expand(refused_topic, username);
	if(to){
		if(mosquitto_broker_publish_copy(NULL, to, len, notice, 1, false, NULL) != MOSQ_ERR_SUCCESS){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "guard: could not publish the refusal notice for %s", username);
		}
		mosquitto_free(to);
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "guard: refused %lu-byte publish to '%s' by %s",
			(unsigned long)payloadlen, topic, username);
	return MOSQ_ERR_ACL_DENIED;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)userdata;
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *username = mosquitto_client_username(ed->client);
	if(!username || !ed->topic || is_service(username)) return MOSQ_ERR_PLUGIN_DEFER;
	switch(ed->access){
		case MOSQ_ACL_SUBSCRIBE:
			return check_subscribe(username, ed->topic);
		case MOSQ_ACL_WRITE:
			return check_publish(username, ed->topic, ed->payloadlen);
		default:
			return MOSQ_ERR_PLUGIN_DEFER;
	}
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	plugin_id = identifier;
	for(int i = 0; i < option_count; i++){
		if(!strcmp(options[i].key, "device_subscribe")){
			device_subscribe = mosquitto_strdup(options[i].value);
		}else if(!strcmp(options[i].key, "refused_topic")){
			refused_topic = mosquitto_strdup(options[i].value);
		}else if(!strcmp(options[i].key, "service_prefix")){
			service_prefix = mosquitto_strdup(options[i].value);
		}else if(!strcmp(options[i].key, "max_payload")){
			char *end = NULL;
			max_payload = strtoul(options[i].value, &end, 10);
			if(!end || *end || max_payload == 0){
				mosquitto_log_printf(MOSQ_LOG_ERR, "guard: max_payload must be a positive number of bytes");
				return MOSQ_ERR_INVAL;
			}
		}else if(!strcmp(options[i].key, "snapshot_topic")){
			snapshot_topic = mosquitto_strdup(options[i].value);
		}else if(!strcmp(options[i].key, "snapshot_max_payload")){
			char *end = NULL;
			snapshot_max_payload = strtoul(options[i].value, &end, 10);
			if(!end || *end || snapshot_max_payload == 0){
				mosquitto_log_printf(MOSQ_LOG_ERR, "guard: snapshot_max_payload must be a positive number of bytes");
				return MOSQ_ERR_INVAL;
			}
		}
	}
	if((snapshot_topic == NULL) != (snapshot_max_payload == 0)){
		mosquitto_log_printf(MOSQ_LOG_ERR, "guard: plugin_opt_snapshot_topic and plugin_opt_snapshot_max_payload go together");
		return MOSQ_ERR_INVAL;
	}
	if(!device_subscribe || !refused_topic || !service_prefix || !*service_prefix || max_payload == 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, "guard: needs plugin_opt_device_subscribe, plugin_opt_refused_topic, "
				"plugin_opt_service_prefix and plugin_opt_max_payload");
		return MOSQ_ERR_INVAL;
	}
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_free(device_subscribe);
	mosquitto_free(refused_topic);
	mosquitto_free(service_prefix);
	mosquitto_free(snapshot_topic);
	device_subscribe = refused_topic = service_prefix = snapshot_topic = NULL;
	return MOSQ_ERR_SUCCESS;
}
