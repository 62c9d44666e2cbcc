/** Injection token of the {@link CatalogStore} (SQLite by default). */
export const CATALOG_STORE = Symbol('CATALOG_STORE');
