import preset from '../../jest.preset.js';

// Every test here runs the doctor against a local Azure (often as a child process, which loads the Azure SDKs, and
// signs in to the local PostgreSQL, whose engine starts with the first connection): a budget for a machine under
// load, not a margin a correct run comes near.
export default { ...preset, displayName: 'doctor', testTimeout: 60_000 };
