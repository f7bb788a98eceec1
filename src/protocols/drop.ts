/**
 * Why a received frame was dropped. Codecs return one of these strings instead of a record; shells count
 * them per reason. Strings are interned, so the drop path allocates nothing.
 */
export type DropReason =
  | "Truncated"
  | "BadVersion"
  | "BadHeaderLength"
  | "BadLength"
  | "BadChecksum"
  | "BadOption"
  | "Unsupported"
  | "NotForUs"
  | "Fragment"
  | "TtlExpired"
  | "NoRoute"
  | "NoListener"
  | "QueueFull"
  | "ReassemblyLimit"
  | "Malformed"

export const isDrop = (x: unknown): x is DropReason => typeof x === "string"
