/*
 * tap.c: a small N-API addon (C, NAPI_VERSION 8) that owns a Linux TAP file descriptor.
 *
 *   open(name, { vnetHdr, offload, path? }) -> { fd, name, vnetHdr, offload }
 *       /dev/net/tun + TUNSETIFF(IFF_TAP|IFF_NO_PI[|IFF_VNET_HDR]), O_NONBLOCK. With vnetHdr:
 *       TUNSETVNETHDRSZ 10 and, if offload, TUNSETOFFLOAD(CSUM|TSO4|TSO6); a refused TUNSETOFFLOAD
 *       falls back to a vnet header without offloads (reported as offload: false). Works both to
 *       create a TAP and to attach to a persistent one owned by the caller (ip tuntap ... user U).
 *       Errors are JS Errors with `code` ("ENOENT", "EPERM", "EBUSY", ...) and a hint.
 *   startRx(fd, vnetHdr, ringBytes, slotBytes, maxBatch, cb, spinUs?) -> { handle, ring: ArrayBuffer, meta: Int32Array }
 *       A uv_poll_t on the fd. Each wake drains up to maxBatch frames with read() into consecutive
 *       slots of a ring allocated once, then makes ONE callback cb(count, meta). meta holds
 *       META_STRIDE int32 per frame: [offset, length, flags, gsoType, hdrLen, gsoSize, csumStart,
 *       csumOffset] (offset/length of the Ethernet frame in the ring, vnet header stripped).
 *       If cb returns exactly `false` the batch was not accepted and its slots are reused at once.
 *       A read error is reported as cb(-errno, meta) after the frames read before it.
 *       spinUs > 0 turns on adaptive busy polling: after a frame arrives, a uv_idle_t keeps the event
 *       loop from sleeping (libuv then polls with a zero timeout) until no frame has come for spinUs
 *       microseconds. A frame that arrives meanwhile is read on the next loop turn instead of after
 *       a sleep and wake-up of the thread, which is most of a TAP round trip on a VM.
 *   stopRx(handle)      stops and closes the poll (and busy-poll idle) handles; idempotent.
 *   writeBatch(fd, vnetHdr, frames: Uint8Array[], count, meta: Int32Array|null, maxLen, out?) -> written
 *       One write() (writev with a 10-byte virtio_net_hdr built from meta, TX_META_STRIDE int32 per
 *       frame [flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset]) per frame. EAGAIN/ENOBUFS
 *       and per-frame errors (EINVAL, EMSGSIZE, frames > maxLen) drop the frame; the caller
 *       computes dropped = count - written. If `out` (Int32Array, length >= 2) is given, out[0] =
 *       frames written and out[1] = Ethernet bytes written. EBADF/EIO/EBADFD/ENODEV throw.
 *   setSynFilter(fd, sources: Uint32Array, count, keepShift, allLevel) -> ok: boolean
 *       A classic BPF socket filter on the TAP (TUNATTACHFILTER), run by the kernel when it queues a frame
 *       for us, in the sender's context: bare IPv4 SYNs (SYN without ACK, RST or FIN; no fragment) from
 *       the `count` listed sources (host-order IPv4 numbers, at most 64) are dropped except one in
 *       2^keepShift (the sample that still reaches us, so the caller can tell when a source stops), and
 *       bare SYNs from any other source are dropped with probability allLevel/64. count 0 and allLevel 0
 *       detach the filter. Returns false where the kernel refused (then the filter is as it was).
 *   close(fd)
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define META_STRIDE 8
#define TX_META_STRIDE 6
#define VNET_HDR_LEN 10

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, "EADDON", "tap addon: N-API call failed: " #call); \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

/* ---- errors ------------------------------------------------------------------------------- */

static const char* errno_code(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EBADFD: return "EBADFD";
    case EIO: return "EIO";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EAGAIN: return "EAGAIN";
    case EFAULT: return "EFAULT";
    default: return "EUNKNOWN";
  }
}

/* Throws an Error with .code = errno name and .errno = e. */
static void throw_errno(napi_env env, int e, const char* msg) {
  napi_value code, message, err, num;
  char full[512];
  snprintf(full, sizeof full, "%s (%s: %s)", msg, errno_code(e), strerror(e));
  if (napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code) != napi_ok) return;
  if (napi_create_string_utf8(env, full, NAPI_AUTO_LENGTH, &message) != napi_ok) return;
  if (napi_create_error(env, code, message, &err) != napi_ok) return;
  napi_set_named_property(env, err, "code", code);
  if (napi_create_int32(env, e, &num) == napi_ok) napi_set_named_property(env, err, "errno", num);
  napi_throw(env, err);
}

static void throw_code(napi_env env, const char* code, const char* msg) {
  napi_throw_error(env, code, msg);
}

/* ---- argument helpers ----------------------------------------------------------------------- */

static int get_bool_prop(napi_env env, napi_value obj, const char* key, int dflt) {
  napi_value v;
  bool has = false, b = false;
  napi_valuetype t;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return dflt;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return dflt;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean) return dflt;
  napi_get_value_bool(env, v, &b);
  return b ? 1 : 0;
}

static int get_i32(napi_env env, napi_value v, int32_t* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/* ---- open / close ------------------------------------------------------------------------- */

static napi_value tap_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, v;
  char name[IFNAMSIZ + 8];
  char path[256] = "/dev/net/tun";
  size_t name_len = 0;
  napi_valuetype t;
  int vnet = 0, offload = 0, fd, flags;
  int32_t want_qlen = 0, qlen = -1;
  struct ifreq ifr;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string) {
    throw_code(env, "EINVAL", "tap.open(name, opts): name must be a string");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok) return NULL;
  if (name_len >= IFNAMSIZ) {
    throw_code(env, "EINVAL", "tap.open: interface name too long (at most 15 bytes)");
    return NULL;
  }
  if (argc >= 2 && napi_typeof(env, argv[1], &t) == napi_ok && t == napi_object) {
    bool has = false;
    vnet = get_bool_prop(env, argv[1], "vnetHdr", 0);
    offload = vnet && get_bool_prop(env, argv[1], "offload", 0);
    if (napi_has_named_property(env, argv[1], "txQueueLen", &has) == napi_ok && has &&
        napi_get_named_property(env, argv[1], "txQueueLen", &v) == napi_ok)
      get_i32(env, v, &want_qlen);
    if (napi_has_named_property(env, argv[1], "path", &has) == napi_ok && has &&
        napi_get_named_property(env, argv[1], "path", &v) == napi_ok &&
        napi_typeof(env, v, &t) == napi_ok && t == napi_string) {
      size_t plen = 0;
      napi_get_value_string_utf8(env, v, path, sizeof path, &plen);
    }
  }

  fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENODEV || e == ENXIO)
      throw_errno(env, e, "tap.open: the TUN/TAP device node is missing; load the tun module (modprobe tun) "
                          "or, in a container, pass --device /dev/net/tun");
    else if (e == EPERM || e == EACCES)
      throw_errno(env, e, "tap.open: no permission to open the TUN/TAP device node; run as root/with CAP_NET_ADMIN "
                          "or make /dev/net/tun accessible (mode 0666 is the default)");
    else
      throw_errno(env, e, "tap.open: cannot open the TUN/TAP device node");
    return NULL;
  }

  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name, name_len);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    if (e == EPERM || e == EACCES)
      throw_errno(env, e, "tap.open: TUNSETIFF refused; creating a TAP needs CAP_NET_ADMIN. Run as root, or create a "
                          "persistent TAP you own first: sudo ip tuntap add dev <name> mode tap user $USER");
    else if (e == EBUSY)
      throw_errno(env, e, "tap.open: the TAP is busy: another process has it open (or the flags differ)");
    else if (e == EINVAL)
      throw_errno(env, e, "tap.open: TUNSETIFF rejected the request: invalid name, or a non-TAP device "
                          "(or a TUN/multiqueue device) already uses that name");
    else
      throw_errno(env, e, "tap.open: TUNSETIFF failed");
    return NULL;
  }

  if (vnet) {
    int sz = VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      int e = errno;
      close(fd);
      throw_errno(env, e, "tap.open: TUNSETVNETHDRSZ failed; open without vnetHdr");
      return NULL;
    }
    if (offload) {
      unsigned int off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
      if (ioctl(fd, TUNSETOFFLOAD, off) < 0) {
        offload = 0;
        ioctl(fd, TUNSETOFFLOAD, 0U);
      }
    }
  }

  /* The kernel's queue toward us (the device's txqueuelen, 1000 by default) absorbs the moments our
     reader is busy; raise it to want_qlen when we may (CAP_NET_ADMIN: a TAP we create), never lower it.
     Best effort: an attached user-owned TAP keeps its length. */
  if (want_qlen > 0) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s >= 0) {
      struct ifreq q;
      memset(&q, 0, sizeof q);
      memcpy(q.ifr_name, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
      if (ioctl(s, SIOCGIFTXQLEN, &q) == 0) {
        qlen = q.ifr_qlen;
        if (q.ifr_qlen < want_qlen) {
          q.ifr_qlen = want_qlen;
          if (ioctl(s, SIOCSIFTXQLEN, &q) == 0) qlen = want_qlen;
        }
      }
      close(s);
    }
  }

  /* O_NONBLOCK was set at open(); make sure it survived (it does, but be explicit). */
  flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags | O_NONBLOCK);

  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_int32(env, fd, &v));
  CHECK(napi_set_named_property(env, result, "fd", v));
  CHECK(napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &v));
  CHECK(napi_set_named_property(env, result, "name", v));
  CHECK(napi_get_boolean(env, vnet != 0, &v));
  CHECK(napi_set_named_property(env, result, "vnetHdr", v));
  CHECK(napi_get_boolean(env, offload != 0, &v));
  CHECK(napi_set_named_property(env, result, "offload", v));
  CHECK(napi_create_int32(env, qlen, &v));
  CHECK(napi_set_named_property(env, result, "txQueueLen", v));
  return result;
}

static napi_value tap_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_i32(env, argv[0], &fd) || fd < 0) {
    throw_code(env, "EINVAL", "tap.close(fd): fd must be a non-negative integer");
    return NULL;
  }
  if (close(fd) < 0 && errno != EINTR) {
    throw_errno(env, errno, "tap.close failed");
    return NULL;
  }
  return NULL;
}

/* ---- RX ----------------------------------------------------------------------------------- */

typedef struct {
  uv_poll_t poll;
  uv_idle_t idle;    /* busy polling: active while frames came within spin_ns */
  napi_env env;
  napi_ref cb;
  napi_ref meta_ref;
  napi_ref ring_ref;
  napi_async_context actx;
  uint8_t* ring;
  int32_t* meta;
  size_t slot_bytes;
  uint32_t nslots;
  uint32_t next;     /* next slot to fill */
  int32_t max_batch;
  int fd;
  int vnet;
  int stopped;       /* stopRx called (or fatal error): no more callbacks */
  int open_handles;  /* poll and idle: freed when both closed */
  int closed;        /* every uv_close completed */
  uint64_t spin_ns;  /* 0: no busy polling */
  uint64_t last_ns;  /* uv_hrtime() of the last batch */
  int spinning;
  int finalized;     /* JS external collected */
} rx_state;

static void rx_maybe_free(rx_state* rx) {
  if (rx->closed && rx->finalized) free(rx);
}

static void rx_on_close(uv_handle_t* h) {
  rx_state* rx = (rx_state*)h->data;
  if (--rx->open_handles > 0) return;
  rx->closed = 1;
  rx_maybe_free(rx);
}

static void rx_close_handles(rx_state* rx) {
  uv_poll_stop(&rx->poll);
  uv_idle_stop(&rx->idle);
  rx->spinning = 0;
  uv_close((uv_handle_t*)&rx->poll, rx_on_close);
  uv_close((uv_handle_t*)&rx->idle, rx_on_close);
}

/* While spinning, the idle handle keeps libuv's poll timeout at zero; it stops once the link is quiet. */
static void rx_on_idle(uv_idle_t* h) {
  rx_state* rx = (rx_state*)h->data;
  if (rx->stopped || uv_hrtime() - rx->last_ns > rx->spin_ns) {
    uv_idle_stop(h);
    rx->spinning = 0;
  }
}

static void rx_release_js(rx_state* rx) {
  napi_env env = rx->env;
  if (rx->cb) { napi_delete_reference(env, rx->cb); rx->cb = NULL; }
  if (rx->meta_ref) { napi_delete_reference(env, rx->meta_ref); rx->meta_ref = NULL; }
  if (rx->ring_ref) { napi_delete_reference(env, rx->ring_ref); rx->ring_ref = NULL; }
  if (rx->actx) { napi_async_destroy(env, rx->actx); rx->actx = NULL; }
}

static void rx_stop(rx_state* rx) {
  if (rx->stopped) return;
  rx->stopped = 1;
  rx_close_handles(rx);
  rx_release_js(rx);
}

static void rx_finalize(napi_env env, void* data, void* hint) {
  rx_state* rx = (rx_state*)data;
  (void)env; (void)hint;
  /* The JS side dropped the handle without stopRx: stop now (we are on the loop thread). */
  if (!rx->stopped) {
    rx->stopped = 1;
    rx_close_handles(rx);
    /* references are owned by env; deleting them from a finalizer is allowed */
    rx_release_js(rx);
  }
  rx->finalized = 1;
  rx_maybe_free(rx);
}

/* Calls cb(count, meta) once; returns 0 if JS answered exactly `false` (batch not accepted). */
static int rx_deliver(rx_state* rx, int32_t count) {
  napi_env env = rx->env;
  napi_handle_scope scope;
  napi_value cb, global, argv[2], result;
  napi_valuetype t;
  napi_status st;
  int accepted = 1;

  if (napi_open_handle_scope(env, &scope) != napi_ok) return 1;
  if (napi_get_reference_value(env, rx->cb, &cb) != napi_ok ||
      napi_get_reference_value(env, rx->meta_ref, &argv[1]) != napi_ok ||
      napi_get_global(env, &global) != napi_ok ||
      napi_create_int32(env, count, &argv[0]) != napi_ok) {
    napi_close_handle_scope(env, scope);
    return 1;
  }
  /* recv must be an object (undefined -> TypeError inside make_callback): use the global object. */
  st = napi_make_callback(env, rx->actx, global, cb, 2, argv, &result);
  if (st == napi_ok) {
    if (napi_typeof(env, result, &t) == napi_ok && t == napi_boolean) {
      bool b = true;
      napi_get_value_bool(env, result, &b);
      accepted = b ? 1 : 0;
    }
  } else {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
  return accepted;
}

static void rx_on_poll(uv_poll_t* h, int status, int events) {
  rx_state* rx = (rx_state*)h->data;
  int32_t n = 0;
  int err = 0;
  (void)events;
  if (rx->stopped) return;
  if (status < 0) {
    err = -status;
  } else {
    uint32_t slot = rx->next;
    while (n < rx->max_batch) {
      uint8_t* p = rx->ring + (size_t)slot * rx->slot_bytes;
      ssize_t r = read(rx->fd, p, rx->slot_bytes);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
        break;
      }
      int32_t* m = rx->meta + (size_t)n * META_STRIDE;
      if (rx->vnet) {
        uint16_t hl, gs, cs, co;
        if (r < VNET_HDR_LEN) continue; /* runt: cannot happen with a vnet TAP; skip */
        memcpy(&hl, p + 2, 2); memcpy(&gs, p + 4, 2); memcpy(&cs, p + 6, 2); memcpy(&co, p + 8, 2);
        m[0] = (int32_t)((size_t)slot * rx->slot_bytes + VNET_HDR_LEN);
        m[1] = (int32_t)(r - VNET_HDR_LEN);
        m[2] = p[0]; m[3] = p[1]; m[4] = hl; m[5] = gs; m[6] = cs; m[7] = co;
      } else {
        m[0] = (int32_t)((size_t)slot * rx->slot_bytes);
        m[1] = (int32_t)r;
        m[2] = 0; m[3] = 0; m[4] = 0; m[5] = 0; m[6] = 0; m[7] = 0;
      }
      n++;
      slot = slot + 1 == rx->nslots ? 0 : slot + 1;
    }
  }
  if (n > 0) {
    int accepted;
    if (rx->spin_ns > 0) {
      rx->last_ns = uv_hrtime();
      if (!rx->spinning && uv_idle_start(&rx->idle, rx_on_idle) == 0) rx->spinning = 1;
    }
    accepted = rx_deliver(rx, n);
    if (rx->stopped) return; /* the callback may have stopped us */
    if (accepted) rx->next = (uint32_t)((rx->next + (uint32_t)n) % rx->nslots);
  }
  if (err != 0 && !rx->stopped) {
    /* Report once, then stop polling: a TAP that errors (device gone) does not recover. */
    uv_poll_stop(&rx->poll);
    uv_idle_stop(&rx->idle);
    rx->spinning = 0;
    rx_deliver(rx, -err);
  }
}

static napi_value tap_start_rx(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], result, handle, ring_ab, meta_ab, meta_ta;
  int32_t fd, ring_bytes, slot_bytes, max_batch, spin_us = 0;
  bool vnet = false;
  napi_valuetype t;
  void* ring_data = NULL;
  void* meta_data = NULL;
  napi_value res_name;
  uv_loop_t* loop;
  rx_state* rx;
  int rc;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6 || !get_i32(env, argv[0], &fd) || fd < 0 ||
      napi_get_value_bool(env, argv[1], &vnet) != napi_ok ||
      !get_i32(env, argv[2], &ring_bytes) || !get_i32(env, argv[3], &slot_bytes) ||
      !get_i32(env, argv[4], &max_batch) ||
      napi_typeof(env, argv[5], &t) != napi_ok || t != napi_function ||
      (argc >= 7 && (!get_i32(env, argv[6], &spin_us) || spin_us < 0))) {
    throw_code(env, "EINVAL", "tap.startRx(fd, vnetHdr, ringBytes, slotBytes, maxBatch, cb, spinUs?): bad arguments");
    return NULL;
  }
  if (slot_bytes < 64 || max_batch < 1 || ring_bytes < slot_bytes ||
      (uint32_t)(ring_bytes / slot_bytes) < (uint32_t)max_batch) {
    throw_code(env, "EINVAL", "tap.startRx: need slotBytes >= 64, maxBatch >= 1 and ringBytes/slotBytes >= maxBatch");
    return NULL;
  }

  rx = (rx_state*)calloc(1, sizeof *rx);
  if (rx == NULL) { throw_errno(env, ENOMEM, "tap.startRx"); return NULL; }
  rx->env = env;
  rx->fd = fd;
  rx->vnet = vnet ? 1 : 0;
  rx->slot_bytes = (size_t)slot_bytes;
  rx->nslots = (uint32_t)(ring_bytes / slot_bytes);
  rx->max_batch = max_batch;
  rx->spin_ns = (uint64_t)spin_us * 1000u;

  if (napi_create_arraybuffer(env, (size_t)rx->nslots * rx->slot_bytes, &ring_data, &ring_ab) != napi_ok ||
      napi_create_arraybuffer(env, (size_t)max_batch * META_STRIDE * sizeof(int32_t), &meta_data, &meta_ab) != napi_ok ||
      napi_create_typedarray(env, napi_int32_array, (size_t)max_batch * META_STRIDE, meta_ab, 0, &meta_ta) != napi_ok ||
      napi_create_reference(env, argv[5], 1, &rx->cb) != napi_ok ||
      napi_create_reference(env, meta_ta, 1, &rx->meta_ref) != napi_ok ||
      napi_create_reference(env, ring_ab, 1, &rx->ring_ref) != napi_ok ||
      napi_create_string_utf8(env, "TapRx", NAPI_AUTO_LENGTH, &res_name) != napi_ok ||
      napi_async_init(env, NULL, res_name, &rx->actx) != napi_ok ||
      napi_get_uv_event_loop(env, &loop) != napi_ok) {
    rx_release_js(rx);
    free(rx);
    throw_code(env, "ENOMEM", "tap.startRx: cannot allocate the RX ring");
    return NULL;
  }
  rx->ring = (uint8_t*)ring_data;
  rx->meta = (int32_t*)meta_data;

  rc = uv_poll_init(loop, &rx->poll, fd);
  if (rc < 0) {
    rx_release_js(rx);
    free(rx);
    throw_errno(env, -rc, "tap.startRx: uv_poll_init failed");
    return NULL;
  }
  rx->poll.data = rx;
  uv_idle_init(loop, &rx->idle); /* cannot fail */
  rx->idle.data = rx;
  rx->open_handles = 2;
  rc = uv_poll_start(&rx->poll, UV_READABLE, rx_on_poll);
  if (rc < 0) {
    rx->stopped = 1;
    rx->finalized = 1; /* no external yet: freed by the close callback */
    rx_release_js(rx);
    rx_close_handles(rx);
    throw_errno(env, -rc, "tap.startRx: uv_poll_start failed");
    return NULL;
  }

  if (napi_create_external(env, rx, rx_finalize, NULL, &handle) != napi_ok) {
    rx_stop(rx);
    rx->finalized = 1;
    throw_code(env, "ENOMEM", "tap.startRx: cannot create the handle");
    return NULL;
  }
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  CHECK(napi_set_named_property(env, result, "ring", ring_ab));
  CHECK(napi_set_named_property(env, result, "meta", meta_ta));
  return result;
}

static napi_value tap_stop_rx(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void* data = NULL;
  napi_valuetype t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    throw_code(env, "EINVAL", "tap.stopRx(handle): handle must come from startRx");
    return NULL;
  }
  rx_stop((rx_state*)data);
  return NULL;
}

/* ---- TX ----------------------------------------------------------------------------------- */

static napi_value tap_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], result;
  int32_t fd, count, max_len;
  int32_t* out = NULL;
  int32_t bytes = 0;
  bool vnet = false, is_array = false, has_meta = false;
  uint32_t arr_len = 0;
  int32_t* meta = NULL;
  size_t meta_len = 0;
  int32_t written = 0;
  napi_valuetype t;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6 || !get_i32(env, argv[0], &fd) || fd < 0 ||
      napi_get_value_bool(env, argv[1], &vnet) != napi_ok ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      !get_i32(env, argv[3], &count) || count < 0 || !get_i32(env, argv[5], &max_len)) {
    throw_code(env, "EINVAL", "tap.writeBatch(fd, vnetHdr, frames, count, meta, maxLen): bad arguments");
    return NULL;
  }
  CHECK(napi_get_array_length(env, argv[2], &arr_len));
  if (argc >= 7 && napi_typeof(env, argv[6], &t) == napi_ok && t == napi_object) {
    bool is_ta = false;
    napi_typedarray_type tt;
    size_t olen = 0;
    void* d = NULL;
    if (napi_is_typedarray(env, argv[6], &is_ta) == napi_ok && is_ta &&
        napi_get_typedarray_info(env, argv[6], &tt, &olen, &d, NULL, NULL) == napi_ok &&
        tt == napi_int32_array && olen >= 2)
      out = (int32_t*)d;
  }
  if ((uint32_t)count > arr_len) count = (int32_t)arr_len;
  if (napi_typeof(env, argv[4], &t) == napi_ok && t == napi_object) {
    bool is_ta = false;
    napi_typedarray_type tt;
    void* d = NULL;
    if (napi_is_typedarray(env, argv[4], &is_ta) == napi_ok && is_ta &&
        napi_get_typedarray_info(env, argv[4], &tt, &meta_len, &d, NULL, NULL) == napi_ok &&
        tt == napi_int32_array) {
      meta = (int32_t*)d;
      has_meta = true;
    }
  }
  if (vnet && has_meta && meta_len < (size_t)count * TX_META_STRIDE) {
    throw_code(env, "EINVAL", "tap.writeBatch: meta must hold 6 int32 per frame");
    return NULL;
  }

  for (int32_t i = 0; i < count; i++) {
    napi_value el;
    napi_typedarray_type tt;
    size_t len = 0;
    void* data = NULL;
    bool is_ta = false;
    ssize_t r;
    if (napi_get_element(env, argv[2], (uint32_t)i, &el) != napi_ok ||
        napi_is_typedarray(env, el, &is_ta) != napi_ok || !is_ta ||
        napi_get_typedarray_info(env, el, &tt, &len, &data, NULL, NULL) != napi_ok ||
        (tt != napi_uint8_array && tt != napi_uint8_clamped_array)) {
      throw_code(env, "EINVAL", "tap.writeBatch: every frame must be a Uint8Array");
      return NULL;
    }
    if (len == 0 || (max_len > 0 && len > (size_t)max_len)) continue; /* dropped */
    if (vnet) {
      uint8_t hdr[VNET_HDR_LEN];
      struct iovec iov[2];
      memset(hdr, 0, sizeof hdr);
      if (has_meta) {
        const int32_t* m = meta + (size_t)i * TX_META_STRIDE;
        uint16_t hl = (uint16_t)m[2], gs = (uint16_t)m[3], cs = (uint16_t)m[4], co = (uint16_t)m[5];
        hdr[0] = (uint8_t)m[0];
        hdr[1] = (uint8_t)m[1];
        memcpy(hdr + 2, &hl, 2); memcpy(hdr + 4, &gs, 2); memcpy(hdr + 6, &cs, 2); memcpy(hdr + 8, &co, 2);
      }
      iov[0].iov_base = hdr; iov[0].iov_len = VNET_HDR_LEN;
      iov[1].iov_base = data; iov[1].iov_len = len;
      do { r = writev(fd, iov, 2); } while (r < 0 && errno == EINTR);
    } else {
      do { r = write(fd, data, len); } while (r < 0 && errno == EINTR);
    }
    if (r >= 0) { written++; bytes += (int32_t)len; continue; }
    switch (errno) {
      case EAGAIN: case ENOBUFS: case EINVAL: case EMSGSIZE: case ENOMEM: case EFAULT:
        continue; /* this frame is dropped; the caller counts count - written */
      default:
        throw_errno(env, errno, "tap.writeBatch: the TAP write failed");
        return NULL;
    }
  }
  if (out != NULL) { out[0] = written; out[1] = bytes; }
  CHECK(napi_create_int32(env, written, &result));
  return result;
}

/* ---- kernel SYN filter -------------------------------------------------------------------- */

#define SYN_FILTER_MAX_SOURCES 64

static napi_value tap_set_syn_filter(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  int32_t fd, count, keep_shift, all_level;
  uint32_t* src = NULL;
  size_t src_len = 0;
  bool is_ta = false;
  int ok = 0;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1 && napi_is_typedarray(env, argv[1], &is_ta) == napi_ok && is_ta) {
    napi_typedarray_type tt;
    void* data;
    if (napi_get_typedarray_info(env, argv[1], &tt, &src_len, &data, NULL, NULL) == napi_ok && tt == napi_uint32_array)
      src = (uint32_t*)data;
  }
  if (argc < 5 || !get_i32(env, argv[0], &fd) || fd < 0 || src == NULL || !get_i32(env, argv[2], &count) ||
      count < 0 || count > SYN_FILTER_MAX_SOURCES || (size_t)count > src_len ||
      !get_i32(env, argv[3], &keep_shift) || keep_shift < 0 || keep_shift > 16 ||
      !get_i32(env, argv[4], &all_level) || all_level < 0 || all_level > 64) {
    throw_code(env, "EINVAL",
               "tap.setSynFilter(fd, sources: Uint32Array, count <= 64, keepShift 0..16, allLevel 0..64): bad arguments");
    return NULL;
  }
  if (count == 0 && all_level == 0) {
    /* nothing to filter: detach (ENOENT when none was attached is fine) */
    if (ioctl(fd, TUNDETACHFILTER, NULL) == 0 || errno == ENOENT || errno == EINVAL) ok = 1;
  } else {
    struct sock_filter prog[16 + SYN_FILTER_MAX_SOURCES];
    unsigned n = 0, i;
    /* jump targets are patched once the layout is known: ACCEPT, DROP and SAMPLE sit at the end */
    const unsigned total = 11 + (unsigned)count + 3 + 3 + 2;
    const unsigned sample = 11 + (unsigned)count + 3; /* first instruction of the listed-source sample */
    const unsigned accept = total - 2, drop = total - 1;
#define AT(x) ((uint8_t)((x) - n - 1))
    prog[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12); n++;            /* ethertype */
    prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0800, 0, AT(accept)); n++;
    prog[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23); n++;            /* IPv4 protocol */
    prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, AT(accept)); n++;
    prog[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20); n++;            /* flags, fragment offset */
    prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, AT(accept), 0); n++; /* MF or offset */
    prog[n] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14); n++;           /* X = IPv4 header length */
    prog[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_IND, 14 + 13); n++;       /* TCP flags */
    prog[n] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x17); n++;         /* FIN SYN RST ACK */
    prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, AT(accept)); n++;
    prog[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 26); n++;            /* source address */
    for (i = 0; i < (unsigned)count; i++) {
      prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, src[i], AT(sample), 0); n++;
    }
    /* any other source: dropped with probability all_level/64 */
    prog[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_RANDOM); n++;
    prog[n] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 63); n++;
    prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)all_level, AT(accept), AT(drop)); n++;
    /* a listed source: one in 2^keep_shift passes */
    prog[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_RANDOM); n++;
    prog[n] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, (1u << keep_shift) - 1); n++;
    prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, AT(accept), AT(drop)); n++;
    prog[n] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu); n++;             /* accept */
    prog[n] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0); n++;                       /* drop */
#undef AT
    if (n != total) {
      throw_code(env, "EADDON", "tap.setSynFilter: filter layout mismatch");
      return NULL;
    }
    {
      struct sock_fprog fp = { (unsigned short)n, prog };
      if (ioctl(fd, TUNATTACHFILTER, &fp) == 0) ok = 1;
    }
  }
  CHECK(napi_get_boolean(env, ok != 0, &result));
  return result;
}

/* ---- module ------------------------------------------------------------------------------- */

static napi_value init(napi_env env, napi_value exports) {
  napi_value v;
  napi_property_descriptor props[] = {
    { "open", NULL, tap_open, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "close", NULL, tap_close, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "startRx", NULL, tap_start_rx, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "stopRx", NULL, tap_stop_rx, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "writeBatch", NULL, tap_write_batch, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "setSynFilter", NULL, tap_set_syn_filter, NULL, NULL, NULL, napi_default_jsproperty, NULL },
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK(napi_create_int32(env, META_STRIDE, &v));
  CHECK(napi_set_named_property(env, exports, "META_STRIDE", v));
  CHECK(napi_create_int32(env, TX_META_STRIDE, &v));
  CHECK(napi_set_named_property(env, exports, "TX_META_STRIDE", v));
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
