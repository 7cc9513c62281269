/**
 * Types for aedes-persistence's in-memory persistence class, which its
 * package types only under another path. Only what sqlite-persistence.ts uses.
 */
declare module 'aedes-persistence/asyncPersistence.js' {
  export default class MemoryPersistence {
    constructor()
    setup(broker: unknown): Promise<void>
    storeRetained(packet: object): Promise<void>
    addSubscriptions(client: { id: string }, subs: object[]): Promise<void>
    removeSubscriptions(client: { id: string }, topics: string[]): Promise<void>
    cleanSubscriptions(client: { id: string }): Promise<void>
    outgoingEnqueue(sub: { clientId: string }, packet: object): Promise<void>
    outgoingEnqueueCombi(subs: { clientId: string }[], packet: object): Promise<void>
    outgoingUpdate(client: { id: string }, packet: object): Promise<void>
    outgoingClearMessageId(client: { id: string }, packet: object): Promise<unknown>
    incomingStorePacket(client: { id: string }, packet: object): Promise<void>
    incomingDelPacket(client: { id: string }, packet: object): Promise<void>
    cleanIncoming(client: { id: string }): Promise<void>
    putWill(client: { id: string }, packet: object): Promise<void>
    delWill(client: { id: string }): Promise<unknown>
    destroy(): Promise<void>
    outgoingStream(client: { id: string }): import('node:stream').Readable
  }
}
