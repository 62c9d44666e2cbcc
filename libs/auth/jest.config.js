import preset from '../../jest.preset.js';

// Two workers: the two refresh tests spend ~30 s each waiting for a token's half-life, not computing.
// The only project with workers (Jest's default on two cores is one, in band), so the only one that can print "A worker
// process has failed to exit gracefully": Jest gives a worker 500 ms to exit after the run, and on a loaded machine
// the process teardown of a worker that loaded Nest, the Azure SDKs and a local Azure takes longer. No handle is left
// open: both workers' event loops are empty ('beforeExit' and 'exit' come within a few ms of Jest's end message).
export default { ...preset, displayName: 'auth', maxWorkers: 2 };
