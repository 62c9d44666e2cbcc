import nx from '@nx/eslint-plugin';

// Only platform libraries (libs/auth, libs/messaging, libs/database) talk to Azure and the database: everything
// else gets its clients, credentials and types from them, so there is exactly one place where identity and Azure meet.
const azureSdks = ['@azure/*', '@azure-rest/*', 'openai', 'pg'];

/**
 * Module boundaries on two axes.
 * type: app → platform | contracts; platform → platform | contracts; contracts → contracts; tool → platform | contracts.
 * scope: each service sees itself and shared; tooling sees shared; shared sees only shared.
 */
const depConstraints = [
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:platform', 'type:contracts'], bannedExternalImports: azureSdks },
  { sourceTag: 'type:platform', onlyDependOnLibsWithTags: ['type:platform', 'type:contracts'] },
  {
    sourceTag: 'type:contracts',
    onlyDependOnLibsWithTags: ['type:contracts'],
    bannedExternalImports: [...azureSdks, '@nestjs/*', 'rhea'],
  },
  { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['type:platform', 'type:contracts'], bannedExternalImports: azureSdks },
  // End-to-end tests drive the running system through the launcher; they import no service code.
  { sourceTag: 'type:e2e', onlyDependOnLibsWithTags: ['type:tool', 'type:contracts'] },
  { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
  { sourceTag: 'scope:gateway', onlyDependOnLibsWithTags: ['scope:gateway', 'scope:shared'] },
  { sourceTag: 'scope:recommendation', onlyDependOnLibsWithTags: ['scope:recommendation', 'scope:shared'] },
  { sourceTag: 'scope:vision', onlyDependOnLibsWithTags: ['scope:vision', 'scope:shared'] },
  { sourceTag: 'scope:tooling', onlyDependOnLibsWithTags: ['scope:tooling', 'scope:shared'] },
  { sourceTag: 'scope:e2e', onlyDependOnLibsWithTags: ['scope:tooling', 'scope:shared'] },
];

const boundaries = (constraints, allow = []) => [
  'error',
  { enforceBuildableLibDependency: false, allow, depConstraints: constraints },
];

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  { ignores: ['**/dist', '**/node_modules', '**/coverage', '**/.local-azure', 'tmp'] },
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': boundaries(depConstraints),
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      // Non-null assertions mark invariants the type system cannot see (a regex group that matched, a
      // key just set); they are allowed, and reviewed like any other claim.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Tests drive the real Azure SDKs as clients against the local Azure: the SDK ban does not apply to them,
    // and any project's tests may start the local Azure (an application, tagged type:tool) in-process.
    files: ['**/*.spec.ts', '**/test/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': boundaries(
        depConstraints.map(({ bannedExternalImports: _banned, ...rest }) => rest),
        ['@keyless/local-azure', '@keyless/local-azure/testing'],
      ),
    },
  },
];
