include $(sort $(wildcard $(BR2_EXTERNAL_PVM_PATH)/package/*/*.mk))
