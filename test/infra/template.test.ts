/**
 * Checks over the ARM JSON that the real Bicep compiler makes of infra/main.bicep (see test/infra/compiled.ts).
 * Without a compiler on the machine these tests are skipped, unless OCI_IMPORT_REQUIRE_BICEP=1 makes that a failure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_STEP_BUDGET_SECONDS, SETTINGS } from '../../lib/config.js';
import { Unevaluated, evaluate, parameterValues } from './arm-eval.js';
import { MAX_REQUEST_BYTES } from '../../lib/request/request.js';
import {
  allResources,
  allTemplates,
  ensureCompiled,
  loadTemplate,
  moduleParam,
  moduleTemplate,
  root,
  secureParams,
  type Json,
  type JsonObject,
  type Resource,
  type Template,
} from './compiled.js';

const requireBicep = process.env.OCI_IMPORT_REQUIRE_BICEP === '1';
// Required (CI): compile now, whatever dist/infra/main.json holds, so the compile test is a compile.
const build = ensureCompiled({ force: requireBicep });

/**
 * Built-in role definition IDs, checked against Microsoft Learn "Azure built-in roles"
 * (articles/role-based-access-control/built-in-roles.md: Storage, Security, Monitor and Containers tables).
 */
const BUILT_IN_ROLES = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b', // Storage Blob Data Owner
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88', // Storage Queue Data Contributor
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a', // Storage Queue Data Message Sender
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3', // Storage Table Data Contributor
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6', // Key Vault Secrets User
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb', // Monitoring Metrics Publisher
  acrPush: '8311e382-0749-4cb8-b61a-304f252e45ec', // AcrPush
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d', // AcrPull
  containerRegistryRepositoryWriter: '2a1e307c-b015-4ebd-883e-5b7698a07328', // Container Registry Repository Writer
  containerRegistryRepositoryReader: 'b93aa761-3e63-49ed-ac28-beffa264f7ac', // Container Registry Repository Reader
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7', // Reader (resolving a source registry given by ARM resource ID)
} as const;

/** Settings the platform reads (not the app), allowed beside SETTINGS. */
const PLATFORM_SETTINGS = [
  'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
  'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT',
];

/** main.bicep parameter that carries each setting's value, where the setting has a default in SETTINGS. */
const SETTING_PARAMS: Record<string, string> = {
  IMPORT_QUEUE: 'importQueueName',
  JOBS_CONTAINER: 'jobsContainerName',
  STEP_BUDGET_SECONDS: 'stepBudgetSeconds',
  MAX_MANIFESTS: 'maxManifests',
  BLOB_CONCURRENCY: 'blobConcurrency',
  FETCH_CONCURRENCY: 'fetchConcurrency',
  COPY_MEMORY: 'copyMemory',
  ALLOWED_SOURCES: 'allowedSources',
  SYNC_SCHEDULE: 'syncSchedule',
  AUTH_MODE: 'authMode',
};

const text = (value: unknown): string => JSON.stringify(value);
/** One app setting each: the settings module's deployed settings that are not a `<name>` family. */
// (Application Insights' settings are the platform wiring's, below; OTEL_* an operator's optional addition)
const appSettingNames = SETTINGS.filter((s) => s.scope === 'app' && !s.pattern && !s.setBy).map((s) => s.name);
/** Setting families (`REGISTRY_CREDENTIALS__<name>__USERNAME`), one app setting per user-chosen name. */
const settingFamilies = SETTINGS.filter((s) => s.scope === 'app' && s.pattern);

/** Expression text that would put a secret into a value: a secure parameter, or a list*() call (keys, SAS). */
function secretLeaks(expression: string, template: Template): string[] {
  const leaks = secureParams(template).filter((p) => expression.includes(`parameters('${p}')`));
  if (/\blist[A-Za-z]*\(/.test(expression)) leaks.push('list*() call');
  if (/AccountKey=|SharedAccessSignature=|[?&]sig=/i.test(expression)) leaks.push('key or SAS literal');
  return leaks;
}

function only(resources: Resource[], type: string): Resource {
  const found = resources.filter((r) => r.type === type);
  expect(
    found.map((r) => r.symbol),
    `exactly one ${type}`,
  ).toHaveLength(1);
  return found[0]!;
}

describe('infra: Bicep compiler', () => {
  it('compiles infra/main.bicep with zero warnings and zero errors', (ctx) => {
    if (build.status === 'unavailable' && !requireBicep) {
      ctx.skip('no Bicep compiler here (set OCI_IMPORT_REQUIRE_BICEP=1 to make this a failure)');
    }
    expect(build.status, build.output).toBe('ok');
  });
});

describe.runIf(build.status === 'ok')('infra: compiled template', () => {
  const template = build.status === 'ok' ? loadTemplate() : ({} as Template);
  const resources = build.status === 'ok' ? allResources(template) : [];
  const settings = build.status === 'ok' ? (moduleParam(template, 'functionApp', 'appSettings') as JsonObject) : {};
  const fnTemplate = build.status === 'ok' ? moduleTemplate(template, 'functionApp') : ({} as Template);
  const site = resources.find((r) => r.type === 'Microsoft.Web/sites');
  const siteConfig = ((site?.properties as JsonObject | undefined)?.siteConfig ?? {}) as JsonObject;

  describe('app settings', () => {
    it("are exactly the settings module's app settings (identity-based `X__y` settings count as X)", () => {
      const names = [...new Set(Object.keys(settings).map((n) => n.replace(/__.*$/, '')))].sort();
      expect(names).toEqual([...appSettingNames].sort());
    });

    it("are passed through whole, beside only the platform's Application Insights settings", () => {
      const expression = String(siteConfig.appSettings);
      expect(expression).toContain("items(parameters('appSettings'))");
      expect(expression).toContain("items(parameters('credentialSettings'))");
      const literalNames = [...expression.matchAll(/createObject\('name', '([^']+)'/g)].map((m) => m[1]).sort();
      expect(literalNames).toEqual(PLATFORM_SETTINGS);
    });

    it("cap request bodies above what the app accepts, so callers get the app's JSON 413, and below the host's 100 MB", () => {
      const expression = String(siteConfig.appSettings);
      expect(expression).toContain(
        "createObject('name', 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT', 'value', string(variables('requestBodySizeLimit')))",
      );
      const limit = Number((fnTemplate.variables as JsonObject).requestBodySizeLimit);
      expect(limit).toBeGreaterThan(MAX_REQUEST_BYTES);
      expect(limit).toBeLessThan(104_857_600);
    });

    it('include the setting families (named registry credentials), the secret half as Key Vault references', () => {
      expect(settingFamilies.map((f) => f.name).sort()).toEqual([
        'REGISTRY_CREDENTIALS__<name>__PASSWORD',
        'REGISTRY_CREDENTIALS__<name>__REGISTRIES',
        'REGISTRY_CREDENTIALS__<name>__USERNAME',
      ]);
      const credentialSettings = String(moduleParam(template, 'functionApp', 'credentialSettings'));
      const references = String(moduleTemplate(template, 'keyVault').outputs.registryCredentialReferences?.value);
      for (const family of settingFamilies) {
        const format = `format('${family.name.replace('<name>', '{0}')}'`;
        if (family.secret) {
          expect(references, family.name).toContain(format);
          expect(references).toContain("format('@Microsoft.KeyVault(SecretUri={0}secrets/{1})'");
          expect(credentialSettings).not.toContain(format);
        } else {
          expect(credentialSettings, family.name).toContain(format);
        }
      }
      expect(credentialSettings).toContain("reference('keyVault').outputs.registryCredentialReferences.value");
      expect(secretLeaks(credentialSettings, template)).toEqual([]);
    });

    it('never deploy a local-only setting', () => {
      const local = SETTINGS.filter((s) => s.scope === 'local').map((s) => s.name);
      expect(local.length).toBeGreaterThan(0);
      for (const name of local) expect(Object.keys(settings)).not.toContain(name);
    });

    it('use identity-based host storage: service URIs from the account, managed identity, client ID, no connection string', () => {
      expect(settings).not.toHaveProperty('AzureWebJobsStorage');
      // __accountName works only outside sovereign clouds and without custom DNS (functions-reference, identity connections)
      expect(settings).not.toHaveProperty('AzureWebJobsStorage__accountName');
      expect(settings.AzureWebJobsStorage__credential).toBe('managedidentity');
      const storage = moduleTemplate(template, 'storage');
      // What the account reports, e.g. in a sovereign cloud: each URI is its primary endpoint, as it is.
      const account = {
        primaryEndpoints: {
          blob: 'https://stx.blob.core.usgovcloudapi.net/',
          queue: 'https://stx.queue.core.usgovcloudapi.net/',
          table: 'https://stx.table.core.usgovcloudapi.net/',
        },
      };
      for (const service of ['blob', 'queue', 'table'] as const) {
        const output = `${service}ServiceUri`;
        expect(settings[`AzureWebJobsStorage__${output}`], output).toBe(
          `[reference('storage').outputs.${output}.value]`,
        );
        const value = evaluate(storage.outputs[output]!.value!, {
          parameters: {},
          reference: (name) => (name === 'account' ? account : null),
        });
        expect(value, output).toBe(account.primaryEndpoints[service]);
      }
      expect(settings.AzureWebJobsStorage__clientId).toBe("[reference('identity').clientId]");
      expect(settings.AZURE_CLIENT_ID).toBe("[reference('identity').clientId]");
    });

    it('carry secrets only as Key Vault references', () => {
      const secrets = SETTINGS.filter((s) => s.secret && !s.pattern && s.scope === 'app');
      expect(secrets.map((s) => s.name).sort()).toEqual([
        'CREDENTIAL_KEY',
        'MESSAGE_KEY',
        'MESSAGE_KEY_PREVIOUS',
        'TARGET_PASSWORD',
      ]);
      const references = (moduleTemplate(template, 'keyVault').outputs.references?.value ?? {}) as JsonObject;
      for (const { name } of secrets) {
        expect(settings[name], name).toBe(`[reference('keyVault').outputs.references.value.${name}]`);
        expect(String(references[name]), name).toContain('@Microsoft.KeyVault(SecretUri=');
      }
    });

    it('hold no secret value in plain text', () => {
      for (const [name, value] of Object.entries(settings)) {
        expect(secretLeaks(text(value), template), name).toEqual([]);
      }
      expect(secretLeaks(String(siteConfig.appSettings), fnTemplate)).toEqual([]);
      expect(secretLeaks(String(moduleParam(template, 'functionApp', 'credentialSettings')), template)).toEqual([]);
    });

    it("default to the settings module's defaults", () => {
      for (const [setting, param] of Object.entries(SETTING_PARAMS)) {
        const spec = SETTINGS.find((s) => s.name === setting);
        expect(String(template.parameters[param]?.defaultValue), `${param} vs ${setting}`).toBe(spec?.default);
        // The value is the parameter itself, or (queue, job container) the storage module's name for what it created from it.
        const viaStorage = moduleParam(template, 'storage', param);
        const expected = viaStorage === null ? `parameters('${param}')` : `reference('storage').outputs.${param}`;
        expect(viaStorage ?? `[parameters('${param}')]`, param).toBe(`[parameters('${param}')]`);
        expect(text(settings[setting]), setting).toContain(expected);
      }
      expect(template.parameters.targetAuth?.defaultValue).toBe('managed-identity');
      // CHUNK_SIZE has no default: not set (empty), a blob step streams a new session's first write
      expect(template.parameters.chunkSize?.defaultValue).toBe('');
      expect(text(settings.CHUNK_SIZE)).toContain(`parameters('chunkSize')`);
    });

    it('carry AUTH_MODE and the Entra ID settings from their parameters; the tenant only with authMode entra', () => {
      expect(template.parameters.authMode?.allowedValues).toEqual(['keys', 'entra']);
      expect(text(settings.ENTRA_AUDIENCE)).toContain("parameters('entraAudience')");
      expect(text(settings.ENTRA_AUTHORITY_HOST)).toContain("parameters('entraAuthorityHost')");
      expect(String(template.parameters.entraAuthorityHost?.defaultValue)).toContain(
        'environment().authentication.loginEndpoint',
      );
      expect(text(settings.ENTRA_TENANT_ID)).toMatch(
        /equals\(parameters\('authMode'\), 'entra'\), parameters\('entraTenantId'\), ''\)/,
      );
    });
  });

  describe('step budget', () => {
    it("stays at most half of host.json functionTimeout, and defaults to the engine's default", () => {
      const host = JSON.parse(readFileSync(join(root, 'host.json'), 'utf8')) as { functionTimeout?: string };
      const [h, m, s] = String(host.functionTimeout).split(':').map(Number);
      const timeoutSeconds = (h ?? 0) * 3600 + (m ?? 0) * 60 + (s ?? 0);
      expect(timeoutSeconds, 'host.json sets functionTimeout (Flex Consumption defaults to 30 min)').toBeGreaterThan(0);
      const budget = template.parameters.stepBudgetSeconds!;
      expect(Number(budget.maxValue) * 2).toBeLessThanOrEqual(timeoutSeconds);
      expect(budget.defaultValue).toBe(DEFAULT_STEP_BUDGET_SECONDS);
      expect(Number(budget.defaultValue)).toBeLessThanOrEqual(Number(budget.maxValue));
    });
  });

  describe('role assignments', () => {
    const assignments = resources.filter((r) => r.type === 'Microsoft.Authorization/roleAssignments');

    it('use the built-in role definition IDs, from one table', () => {
      const tables = allTemplates(template)
        .map((t) => (t.variables as JsonObject | undefined)?.roleIds)
        .filter((v) => v !== undefined);
      expect(tables.length).toBeGreaterThan(0);
      for (const table of tables) expect(table).toEqual(BUILT_IN_ROLES);
      for (const a of assignments) {
        const roleDefinitionId = String((a.properties as JsonObject).roleDefinitionId);
        expect(roleDefinitionId, `${a.module}/${a.symbol}`).toMatch(
          /^\[subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions', /,
        );
        // No GUID typed in place: every role comes from the checked table.
        expect(roleDefinitionId, `${a.module}/${a.symbol}`).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/i);
      }
    });

    it('give the app blob, queue and table data roles on storage, and the sender only queue send', () => {
      const storage = moduleTemplate(template, 'storage');
      expect((storage.variables as JsonObject).appRoles).toEqual([
        "[variables('roleIds').storageBlobDataOwner]",
        "[variables('roleIds').storageQueueDataContributor]",
        "[variables('roleIds').storageTableDataContributor]",
      ]);
      const sender = assignments.find((a) => a.module === 'storage' && a.symbol === 'senderAccess')!;
      expect(text(sender.properties)).toContain("variables('roleIds').storageQueueDataMessageSender");
      expect(String(sender.scope)).toContain('Microsoft.Storage/storageAccounts/queueServices/queues');
    });

    it('give the app Key Vault Secrets User and Monitoring Metrics Publisher', () => {
      expect(text(moduleTemplate(template, 'keyVault').resources)).toContain(
        "variables('roleIds').keyVaultSecretsUser",
      );
      expect(text(moduleTemplate(template, 'monitoring').resources)).toContain(
        "variables('roleIds').monitoringMetricsPublisher",
      );
    });

    it('give push on the target registry and pull on sources, in the classic and the ABAC role set', () => {
      expect(moduleParam(template, 'targetAccess', 'access')).toBe('push');
      expect(moduleParam(template, 'sourceAccess', 'access')).toBe('pull');
      const vars = moduleTemplate(template, 'targetAccess').variables as JsonObject;
      expect(vars.classic).toBe(
        "[if(equals(parameters('access'), 'push'), variables('roleIds').acrPush, variables('roleIds').acrPull)]",
      );
      expect(vars.repository).toBe(
        "[if(equals(parameters('access'), 'push'), variables('roleIds').containerRegistryRepositoryWriter, variables('roleIds').containerRegistryRepositoryReader)]",
      );
      expect(String(vars.dataRoles)).toMatch(
        /'rbac'.*variables\('classic'\).*'abac'.*variables\('repository'\).*variables\('classic'\), variables\('repository'\)/,
      );
      // sources also get Reader on the registry resource: resolving an ARM resource ID reads it
      expect(String(vars.roles)).toBe(
        "[if(equals(parameters('access'), 'pull'), concat(variables('dataRoles'), createArray(variables('roleIds').reader)), variables('dataRoles'))]",
      );
      const registry = only(resources, 'Microsoft.ContainerRegistry/registries');
      expect(text((registry.properties as JsonObject).roleAssignmentMode)).toMatch(
        /'abac'.*AbacRepositoryPermissions.*LegacyRegistryPermissions/,
      );
    });

    it("name the app's identity as a service principal", () => {
      for (const a of assignments.filter((x) => text(x.properties).includes("parameters('appPrincipalId')"))) {
        expect((a.properties as JsonObject).principalType, `${a.module}/${a.symbol}`).toBe('ServicePrincipal');
      }
    });
  });

  describe('hardening', () => {
    it('storage: no shared keys, no public blobs, HTTPS and TLS 1.2', () => {
      const account = only(resources, 'Microsoft.Storage/storageAccounts').properties as JsonObject;
      expect(account.allowSharedKeyAccess).toBe(false);
      expect(account.allowBlobPublicAccess).toBe(false);
      expect(account.supportsHttpsTrafficOnly).toBe(true);
      expect(account.minimumTlsVersion).toBe('TLS1_2');
    });

    it('function app: HTTPS only, TLS 1.2+, FTP and basic publishing credentials off (by policy: Flex refuses ftpsState)', () => {
      expect((site?.properties as JsonObject).httpsOnly).toBe(true);
      expect(siteConfig.minTlsVersion).toBe('1.2');
      expect(siteConfig.scmMinTlsVersion).toBe('1.2');
      // ARM error 51021 on Flex Consumption: test/infra/flex-refused.test.ts
      expect(siteConfig).not.toHaveProperty('ftpsState');
      const policies = resources.filter((r) => r.type === 'Microsoft.Web/sites/basicPublishingCredentialsPolicies');
      expect(policies.map((p) => String(p.name)).sort()).toEqual([
        "[format('{0}/{1}', parameters('appName'), 'ftp')]",
        "[format('{0}/{1}', parameters('appName'), 'scm')]",
      ]);
      for (const p of policies) expect((p.properties as JsonObject).allow).toBe(false);
    });

    it('Key Vault uses RBAC, Application Insights refuses keys, the registry has no admin user', () => {
      expect((only(resources, 'Microsoft.KeyVault/vaults').properties as JsonObject).enableRbacAuthorization).toBe(
        true,
      );
      expect((only(resources, 'Microsoft.Insights/components').properties as JsonObject).DisableLocalAuth).toBe(true);
      const registry = only(resources, 'Microsoft.ContainerRegistry/registries').properties as JsonObject;
      expect(registry.adminUserEnabled).toBe(false);
      expect(registry.anonymousPullEnabled).toBe(false);
    });
  });

  describe('Flex Consumption app', () => {
    it('runs Node on FC1 with the user-assigned identity for deployment, Key Vault and settings', () => {
      const plan = only(resources, 'Microsoft.Web/serverfarms');
      expect(plan.sku).toEqual({ tier: 'FlexConsumption', name: 'FC1' });
      const props = site?.properties as JsonObject;
      const config = props.functionAppConfig as JsonObject;
      expect(text(config.runtime)).toContain('"name":"node"');
      expect(text(config.deployment)).toContain('"type":"UserAssignedIdentity"');
      expect(props.keyVaultReferenceIdentity).toBe("[parameters('identityId')]");
      expect((site?.identity as JsonObject).type).toBe('UserAssigned');
      expect(site?.kind).toBe('functionapp,linux');
      expect(text(site?.tags)).toContain('azd-service-name');
    });

    it('has the import queue, its poison queue, the job container and the deployment container', () => {
      const names = (type: string) => resources.filter((r) => r.type === type).map((r) => String(r.name));
      const queues = names('Microsoft.Storage/storageAccounts/queueServices/queues');
      expect(queues.some((n) => n.includes("parameters('importQueueName')") && !n.includes('-poison'))).toBe(true);
      expect(
        queues.some((n) =>
          n.includes(
            "'{0}/{1}/{2}', parameters('accountName'), 'default', format('{0}-poison', parameters('importQueueName'))",
          ),
        ),
      ).toBe(true);
      const containers = names('Microsoft.Storage/storageAccounts/blobServices/containers').join();
      expect(containers).toContain("parameters('jobsContainerName')");
      expect(containers).toContain("parameters('deploymentContainerName')");
    });
  });

  describe('Azure facts the templates rely on (docs/deploy.md cites each)', () => {
    const main = template;
    const mod = (symbol: string) => moduleTemplate(template, symbol);
    /** A module's parameter values as main.bicep passes them, for the given main parameters. */
    const passed = (
      symbol: string,
      mainParams: Record<string, Json>,
      reference: (name: string) => Json = () => null,
    ): Record<string, Json | Unevaluated> => {
      const found = (main.resources as unknown as Record<string, JsonObject>)[symbol]!;
      const params = (found.properties as JsonObject).parameters as Record<string, Json>;
      const ctx = { parameters: parameterValues(main, mainParams), variables: main.variables as JsonObject, reference };
      const out: Record<string, Json | Unevaluated> = {};
      for (const [name, spec] of Object.entries(params)) {
        try {
          const value = evaluate(spec, ctx);
          out[name] =
            value && typeof value === 'object' && 'value' in (value as JsonObject)
              ? (value as JsonObject).value!
              : value;
        } catch (err) {
          out[name] = new Unevaluated((err as Error).message); // e.g. names made with uniqueString(): not under test
        }
      }
      return out;
    };
    const inModule = (
      symbol: string,
      given: Record<string, Json | Unevaluated>,
      value: Json,
      reference?: (name: string) => Json,
    ): Json => {
      const t = mod(symbol);
      return evaluate(value, {
        parameters: parameterValues(t, given),
        variables: t.variables as JsonObject,
        reference,
      });
    };
    /** A resource of a module by symbolic name; a module compiled to languageVersion 1.0 (an array) has none, so
     * there the one resource of the type that symbol stands for is taken. */
    const resourceIn = (symbol: string, name: string, type?: string): JsonObject => {
      const resources = mod(symbol).resources as unknown as JsonObject[] | Record<string, JsonObject>;
      if (!Array.isArray(resources)) return resources[name]!;
      const found = resources.filter((r) => r.type === type);
      expect(found, `${symbol}: one ${type}`).toHaveLength(1);
      return found[0]!;
    };
    const base = { environmentName: 'env', location: 'westeurope' };
    const referenceStub = (name: string): Json =>
      name === 'monitoring' ? { outputs: { workspaceId: { value: '/subscriptions/s/workspaces/log-x' } } } : {};

    it('a created registry is Premium when its public access is disabled, not only with a private endpoint', () => {
      const sku = resourceIn('registry', 'registry').sku as JsonObject;
      const cases: [string, string, string, string][] = [
        // sku, publicNetworkAccess, private endpoint subnet → the SKU deployed
        ['Standard', 'Enabled', '', 'Standard'],
        ['Basic', 'Enabled', '', 'Basic'],
        ['Standard', 'Disabled', '', 'Premium'],
        ['Basic', 'Disabled', '', 'Premium'],
        [
          'Standard',
          'Enabled',
          '/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/pe',
          'Premium',
        ],
      ];
      for (const [registrySku, access, subnet, expected] of cases) {
        const given = passed('registry', {
          ...base,
          registrySku,
          registryPublicNetworkAccess: access,
          registryPrivateEndpointSubnetId: subnet,
        });
        expect(given.publicNetworkAccess).toBe(access);
        expect(inModule('registry', given, sku.name!), `${registrySku}/${access}/${subnet ? 'endpoint' : '-'}`).toBe(
          expected,
        );
      }
    });

    it("the queue sender's role assignment names its principal type (azd: AZURE_PRINCIPAL_TYPE), or lets ARM look it up", () => {
      expect(main.parameters.principalType?.allowedValues).toEqual(['', 'User', 'Group', 'ServicePrincipal']);
      const sender = resourceIn('storage', 'senderAccess').properties as JsonObject;
      for (const [type, expected] of [
        ['User', 'User'],
        ['ServicePrincipal', 'ServicePrincipal'],
        ['', null],
      ] as const) {
        const given = passed(
          'storage',
          { ...base, principalId: '00000000-0000-0000-0000-00000000000a', principalType: type },
          referenceStub,
        );
        expect(given.senderPrincipalType).toBe(type);
        expect(inModule('storage', given, sender.principalType!), type).toBe(expected);
      }
    });

    it('PRIVATE_SOURCE_REGISTRIES binds the sources marked privateEndpoint, and only with virtual network integration', () => {
      const expression = (moduleParam(main, 'functionApp', 'appSettings') as JsonObject).PRIVATE_SOURCE_REGISTRIES!;
      const id = (name: string) =>
        `/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/${name}`;
      const sources: Json[] = [
        { id: id('privone'), privateEndpoint: true },
        { id: id('publicone') },
        { id: id('privtwo'), permissionsMode: 'abac', privateEndpoint: true },
        { id: id('notone'), privateEndpoint: false },
      ];
      const subnet = '/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/app';
      const value = (given: Record<string, Json>) =>
        evaluate(expression, { parameters: parameterValues(main, { ...base, ...given }) });
      expect(value({ sourceRegistries: sources, virtualNetworkSubnetId: subnet })).toBe(
        `${id('privone')},${id('privtwo')}`,
      );
      expect(value({ sourceRegistries: sources, virtualNetworkSubnetId: '' })).toBe('');
      expect(value({ virtualNetworkSubnetId: subnet })).toBe('');
      expect(JSON.stringify(main.definitions)).toContain('"privateEndpoint"');
    });

    it('the maximum instance count takes 1 to 1000 (no stale minimum of 40)', () => {
      expect(main.parameters.maximumInstanceCount).toMatchObject({ minValue: 1, maxValue: 1000, defaultValue: 100 });
      expect(mod('functionApp').parameters.maximumInstanceCount).toMatchObject({ minValue: 1, maxValue: 1000 });
    });

    it('diagnostic settings send Key Vault, storage (account and services), registry and app logs to the workspace, or nothing', () => {
      const expected: [string, string, string | RegExp, string[]][] = [
        // module, diagnostic setting, what it is scoped to, log categories
        ['keyVault', 'diagnostics', "resourceId('Microsoft.KeyVault/vaults', parameters('vaultName'))", ['AuditEvent']],
        [
          'registry',
          'diagnostics',
          "resourceId('Microsoft.ContainerRegistry/registries', parameters('registryName'))",
          ['ContainerRegistryRepositoryEvents', 'ContainerRegistryLoginEvents'],
        ],
        ['functionApp', 'diagnostics', "resourceId('Microsoft.Web/sites', parameters('appName'))", ['FunctionAppLogs']],
        [
          'storage',
          'accountDiagnostics',
          "resourceId('Microsoft.Storage/storageAccounts', parameters('accountName'))",
          [],
        ],
        [
          'storage',
          'blobDiagnostics',
          'Microsoft.Storage/storageAccounts/blobServices',
          ['StorageRead', 'StorageWrite', 'StorageDelete'],
        ],
        [
          'storage',
          'queueDiagnostics',
          'Microsoft.Storage/storageAccounts/queueServices',
          ['StorageRead', 'StorageWrite', 'StorageDelete'],
        ],
        [
          'storage',
          'tableDiagnostics',
          'Microsoft.Storage/storageAccounts/tableServices',
          ['StorageRead', 'StorageWrite', 'StorageDelete'],
        ],
      ];
      for (const [symbol, name, scope, logs] of expected) {
        const setting = resourceIn(symbol, name, 'Microsoft.Insights/diagnosticSettings');
        expect(setting.type, `${symbol}/${name}`).toBe('Microsoft.Insights/diagnosticSettings');
        expect(String(setting.scope), `${symbol}/${name}`).toContain(typeof scope === 'string' ? scope : '');
        for (const diagnostics of [true, false]) {
          const given = passed(symbol, { ...base, diagnosticSettings: diagnostics }, referenceStub);
          expect(given.logsWorkspaceId, `${symbol} diagnosticSettings=${diagnostics}`).toBe(
            diagnostics ? '/subscriptions/s/workspaces/log-x' : '',
          );
          expect(inModule(symbol, given, setting.condition!), `${symbol}/${name} deployed`).toBe(diagnostics);
          if (!diagnostics) continue;
          const props = inModule(symbol, given, setting.properties!) as JsonObject;
          expect(props.workspaceId).toBe('/subscriptions/s/workspaces/log-x');
          expect(((props.logs ?? []) as JsonObject[]).map((l) => l.category)).toEqual(logs);
          expect(((props.metrics ?? []) as JsonObject[]).length, `${symbol}/${name} metrics`).toBe(1);
        }
      }
    });

    it('Key Vault purge protection is a parameter: off by default, true when on, never the refused false', () => {
      expect(main.parameters.keyVaultPurgeProtection).toMatchObject({ type: 'bool', defaultValue: false });
      const vault = resourceIn('keyVault', 'vault').properties as JsonObject;
      for (const [on, expected] of [
        [true, true],
        [false, null],
      ] as const) {
        const given = passed('keyVault', { ...base, keyVaultPurgeProtection: on }, referenceStub);
        expect(inModule('keyVault', given, vault.enablePurgeProtection!), String(on)).toBe(expected);
      }
    });

    it('CREDENTIAL_KEY never rotates on a deployment that does not pass it', () => {
      expect(JSON.stringify(template)).not.toMatch(/newGuid/i);
      expect(main.parameters).not.toHaveProperty('generatedCredentialKey');
      expect(main.parameters.credentialKey).toMatchObject({ type: 'securestring', defaultValue: '' });
      const secret = resourceIn('keyVault', 'credentialKeySecret');
      const key = Buffer.alloc(32, 1).toString('base64');
      expect(
        inModule('keyVault', passed('keyVault', { ...base, credentialKey: '' }, referenceStub), secret.condition!),
      ).toBe(false);
      expect(
        inModule('keyVault', passed('keyVault', { ...base, credentialKey: key }, referenceStub), secret.condition!),
      ).toBe(true);
      expect(evaluate((secret.properties as JsonObject).value!, { parameters: { credentialKey: key } })).toBe(key);
      // The app setting's reference does not depend on the secret resource, which such a deployment skips.
      const reference = (mod('keyVault').outputs.references?.value as JsonObject).CREDENTIAL_KEY!;
      expect(String(reference)).not.toContain('credentialKeySecret');
      expect(
        inModule('keyVault', passed('keyVault', { ...base }, referenceStub), reference, (name) =>
          name === 'vault' ? { vaultUri: 'https://kv-x.vault.azure.net/' } : null,
        ),
      ).toBe('@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/credential-key)');
    });

    it('MESSAGE_KEY never rotates on a deployment that does not pass it; MESSAGE_KEY_PREVIOUS is set only while passed', () => {
      expect(main.parameters.messageKey).toMatchObject({ type: 'securestring', defaultValue: '' });
      expect(main.parameters.messageKeyPrevious).toMatchObject({ type: 'securestring', defaultValue: '' });
      const secret = resourceIn('keyVault', 'messageKeySecret');
      const key = Buffer.alloc(32, 2).toString('base64');
      expect(
        inModule('keyVault', passed('keyVault', { ...base, messageKey: '' }, referenceStub), secret.condition!),
      ).toBe(false);
      expect(
        inModule('keyVault', passed('keyVault', { ...base, messageKey: key }, referenceStub), secret.condition!),
      ).toBe(true);
      const references = mod('keyVault').outputs.references?.value as JsonObject;
      const vault = (name: string) => (name === 'vault' ? { vaultUri: 'https://kv-x.vault.azure.net/' } : null);
      expect(inModule('keyVault', passed('keyVault', { ...base }, referenceStub), references.MESSAGE_KEY!, vault)).toBe(
        '@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/message-key)',
      );
      const previous = resourceIn('keyVault', 'messageKeyPreviousSecret');
      expect(inModule('keyVault', passed('keyVault', { ...base }, referenceStub), previous.condition!)).toBe(false);
      expect(
        inModule('keyVault', passed('keyVault', { ...base }, referenceStub), references.MESSAGE_KEY_PREVIOUS!, vault),
      ).toBe('');
      expect(
        inModule(
          'keyVault',
          passed('keyVault', { ...base, messageKeyPrevious: key }, referenceStub),
          previous.condition!,
        ),
      ).toBe(true);
    });

    it("azd waits for the Key Vault references after provisioning (postprovision hook) and gets the app's resource ID", () => {
      const yaml = readFileSync(join(root, 'azure.yaml'), 'utf8');
      expect(yaml).toMatch(
        /^ {2}postprovision:\n {4}posix:\n {6}shell: sh\n {6}run: node scripts\/azd\/keyvault-references\.mjs\n {4}windows:\n {6}shell: pwsh\n {6}run: node scripts\/azd\/keyvault-references\.mjs$/m,
      );
      expect(template.outputs.AZURE_FUNCTION_APP_ID?.value).toBe("[reference('functionApp').outputs.id.value]");
    });
  });

  describe('outputs', () => {
    it('give the function base URL and the registry login server', () => {
      expect(String(template.outputs.FUNCTION_BASE_URL?.value)).toMatch(/^\[format\('https:\/\/\{0\}\/api'/);
      expect(String(template.outputs.REGISTRY_LOGIN_SERVER?.value)).toContain(
        "reference('targetAccess').outputs.loginServer",
      );
    });

    it('carry no secret, in main.bicep or any module', () => {
      for (const t of allTemplates(template)) {
        for (const [name, output] of Object.entries(t.outputs ?? {})) {
          expect(String(output.type), name).not.toMatch(/^secure/i);
          expect(secretLeaks(text(output.value), t), name).toEqual([]);
        }
      }
    });
  });

  describe('azd wiring', () => {
    it('main.parameters.json names only real parameters and feeds the azd environment in', () => {
      const file = JSON.parse(readFileSync(join(root, 'infra', 'main.parameters.json'), 'utf8')) as {
        parameters: Record<string, { value: string }>;
      };
      for (const name of Object.keys(file.parameters)) expect(template.parameters, name).toHaveProperty(name);
      expect(file.parameters.environmentName?.value).toBe('${AZURE_ENV_NAME}');
      expect(file.parameters.location?.value).toBe('${AZURE_LOCATION}');
      expect(file.parameters.principalId?.value).toBe('${AZURE_PRINCIPAL_ID}');
      expect(file.parameters.principalType?.value).toBe('${AZURE_PRINCIPAL_TYPE}');
      expect(file.parameters.credentialKey?.value).toBe('${CREDENTIAL_KEY}');
      expect(file.parameters.messageKey?.value).toBe('${MESSAGE_KEY}');
    });

    it('azure.yaml requires an azd that builds Flex Consumption apps remotely and reads .funcignore as we do (>= 1.23.13)', () => {
      const yaml = readFileSync(join(root, 'azure.yaml'), 'utf8');
      // requiredVersions.azd: a semver range azd checks when it loads the project (azure-dev pkg/project/project.go)
      expect(yaml).toMatch(/^requiredVersions:\n {2}azd: ">= 1\.23\.13"$/m);
      expect(yaml).toMatch(/^ {4}remoteBuild: true$/m);
    });

    it('azure.yaml deploys service "api" as a function and makes CREDENTIAL_KEY once per environment', () => {
      const yaml = readFileSync(join(root, 'azure.yaml'), 'utf8');
      expect(yaml).toMatch(/^services:\n {2}api:\n(?: {4}.*\n)*? {4}host: function$/m);
      expect(yaml).toMatch(/preprovision:/);
      expect(yaml.match(/azd env get-value CREDENTIAL_KEY/g)).toHaveLength(2);
      expect(yaml.match(/azd env set CREDENTIAL_KEY/g)).toHaveLength(2);
      expect(yaml.match(/azd env get-value MESSAGE_KEY/g)).toHaveLength(2);
      expect(yaml.match(/azd env set MESSAGE_KEY/g)).toHaveLength(2);
    });
  });

  describe('docs/deploy.md', () => {
    const doc = readFileSync(join(root, 'docs', 'deploy.md'), 'utf8');

    it('names every parameter and output of main.bicep', () => {
      for (const name of Object.keys(template.parameters)) {
        expect(doc, `parameter ${name}`).toContain(`\`${name}\``);
      }
      for (const name of Object.keys(template.outputs)) expect(doc, `output ${name}`).toContain(name);
    });

    it('documents only parameters that exist, and only the built-in role IDs the template uses', () => {
      const tableNames = [...doc.matchAll(/^\| `([a-z][A-Za-z]+)`/gm)].map((m) => m[1]!);
      expect(tableNames.length).toBeGreaterThan(10);
      for (const name of tableNames) expect(template.parameters, name).toHaveProperty(name);
      const guids = doc.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? [];
      for (const guid of guids) expect(Object.values(BUILT_IN_ROLES), guid).toContain(guid);
    });
  });
});
