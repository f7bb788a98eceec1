/**
 * The frame record that travels between the NIC and the stack.
 *
 * `data` is one Ethernet frame (destination MAC first, no virtio-net header). `meta` carries the
 * virtio-net header fields (struct virtio_net_hdr, linux/virtio_net.h) when the TAP was opened with
 * IFF_VNET_HDR, and the constant PLAIN otherwise. Every copy of a frame keeps its meta (style.md §3.8).
 */
export interface VnetMeta {
  /** VIRTIO_NET_HDR_F_NEEDS_CSUM (1): checksum at csumStart+csumOffset holds only the pseudo-header sum.
   *  VIRTIO_NET_HDR_F_DATA_VALID (2): the sender vouches for the checksum. */
  readonly flags: number
  /** VIRTIO_NET_HDR_GSO_NONE (0), TCPV4 (1), UDP (3), TCPV6 (4); | ECN (0x80). */
  readonly gsoType: number
  /** Length of the Ethernet+IP+TCP headers of a GSO frame. */
  readonly hdrLen: number
  /** Segment payload size (the MSS) of a GSO frame. */
  readonly gsoSize: number
  /** Offset from the start of `data` where checksumming starts (NEEDS_CSUM). */
  readonly csumStart: number
  /** Offset from csumStart of the 16-bit checksum field (NEEDS_CSUM). */
  readonly csumOffset: number
}

export const VNET_HDR_LEN = 10
export const VNET_F_NEEDS_CSUM = 1
export const VNET_F_DATA_VALID = 2
export const VNET_GSO_NONE = 0
export const VNET_GSO_TCPV4 = 1
export const VNET_GSO_UDP = 3
export const VNET_GSO_TCPV6 = 4
export const VNET_GSO_ECN = 0x80

/** Meta of a frame with no offload information: checksums are complete, no segmentation. */
export const PLAIN: VnetMeta = Object.freeze({ flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 })

export interface Frame {
  readonly data: Uint8Array
  readonly meta: VnetMeta
}

export const plainFrame = (data: Uint8Array): Frame => ({ data, meta: PLAIN })

/** Largest Ethernet frame a TSO-capable TAP accepts or delivers (64 KiB IP datagram + Ethernet header). */
export const MAX_GSO_FRAME = 65535 + 14
