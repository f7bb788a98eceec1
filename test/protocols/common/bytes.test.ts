import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as B from "../../../src/protocols/bytes.js"

describe("bytes", () => {
  it("big-endian 16/32-bit reads and writes agree with DataView (property)", () => {
    fc.assert(
      fc.property(fc.nat(0xffff), fc.nat({ max: 0xffffffff }), fc.nat(4), (a, b, o) => {
        const buf = new Uint8Array(12)
        const dv = new DataView(buf.buffer)
        B.setU16(buf, o, a)
        expect(dv.getUint16(o)).toBe(a)
        expect(B.u16(buf, o)).toBe(a)
        B.setU32(buf, o, b)
        expect(dv.getUint32(o)).toBe(b)
        expect(B.u32(buf, o)).toBe(b)
        expect(B.i32(buf, o)).toBe(dv.getInt32(o))
        B.setU16le(buf, o, a)
        expect(dv.getUint16(o, true)).toBe(a)
        expect(B.u16le(buf, o)).toBe(a)
      })
    )
  })

  it("u32 of 0xffffffff is unsigned, i32 is -1", () => {
    const b = new Uint8Array([0xff, 0xff, 0xff, 0xff])
    expect(B.u32(b, 0)).toBe(0xffffffff)
    expect(B.i32(b, 0)).toBe(-1)
  })

  it("toHex/fromHex round-trip, including on a subarray view (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(8), (data, skip) => {
        const big = new Uint8Array(data.length + 16)
        big.set(data, skip)
        const view = big.subarray(skip, skip + data.length)
        expect(B.toHex(view)).toBe(Buffer.from(data).toString("hex"))
        expect(B.fromHex(B.toHex(view))).toEqual(Uint8Array.from(data))
      })
    )
  })

  it("fromHex ignores separators and whitespace", () => {
    expect(B.fromHex("00:00:5e 00-53\n01")).toEqual(new Uint8Array([0, 0, 0x5e, 0, 0x53, 1]))
  })
})
